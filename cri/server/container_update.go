package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// ReopenContainerLog starts a new log file for a running container, after
// kubelet has rotated the old one away.
func (s *Server) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.status()
	if rec.State != store.ContainerRunning {
		return nil, fmt.Errorf("container %q is not running: %w", c.id, errFailedPrecondition)
	}
	if rec.LogPath == "" {
		return nil, fmt.Errorf("container %q has no log path: %w", c.id, errFailedPrecondition)
	}
	if err := s.rt.ReopenContainerLog(ctx, rec.PodID, c.id); err != nil {
		return nil, fmt.Errorf("reopen log of container %q: %w", c.id, err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// UpdateContainerResources changes a container's cgroup limits (kubelet's
// CPU manager and in-place resize) and keeps them in its spec, so status
// reports what is in force.
func (s *Server) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if r.GetLinux() == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	rec := c.status()
	if rec.State == store.ContainerExited {
		return nil, fmt.Errorf("container %q has exited: %w", c.id, errFailedPrecondition)
	}
	c.updating.Lock()
	defer c.updating.Unlock()
	spec, err := s.rt.ReadBundle(c.id)
	if err != nil {
		return nil, err
	}
	spec.Linux.Resources = withDeviceRules(linuxResources(r.GetLinux()), spec.Linux.Resources)
	if rec.State == store.ContainerRunning {
		// The device rules do not change; rewriting them would start
		// with "deny all" and fail the container's opens meanwhile.
		live := *spec.Linux.Resources
		live.Devices = nil
		if err := s.cgroups.Update(rec.CgroupPath, &live); err != nil {
			return nil, fmt.Errorf("update cgroup of container %q: %w", c.id, err)
		}
	}
	if err := s.rt.WriteBundle(c.id, spec); err != nil {
		return nil, err
	}
	b, err := proto.Marshal(r.GetLinux())
	if err != nil {
		return nil, err
	}
	if err := c.update(s.db, func(rec *store.Container) { rec.Resources = b }); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// resources are the container's resources in force: the last update's,
// else the config's.
func resources(c *container, rec store.Container) *runtimeapi.LinuxContainerResources {
	if len(rec.Resources) > 0 {
		r := &runtimeapi.LinuxContainerResources{}
		if proto.Unmarshal(rec.Resources, r) == nil {
			return r
		}
	}
	return c.config.GetLinux().GetResources()
}
