package server

import (
	"context"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveContainer kills the container if it still runs and removes its
// cgroup, rootfs and records. Removing a container that is gone succeeds.
func (s *Server) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if errors.Is(err, errNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, fmt.Errorf("remove container %q: %w", c.id, err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Server) removeContainer(ctx context.Context, c *container) error {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	if cur, err := s.objs.ctrs.get(c.id); err != nil || cur != c {
		return nil // removed meanwhile
	}
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	rec := c.status()
	if err := s.cgroups.Delete(rec.CgroupPath); err != nil {
		return err
	}
	if err := s.images.UnmountSnapshot(s.rt.RootfsPath(c.id)); err != nil {
		return err
	}
	if err := s.images.RemoveSnapshot(c.id); err != nil {
		return err
	}
	if err := s.removeImageVolumes(c); err != nil {
		return err
	}
	if err := s.rt.RemoveContainer(rec.PodID, c.id); err != nil {
		return err
	}
	if err := s.db.DeleteContainer(c.id); err != nil {
		return err
	}
	c.markExited()
	s.objs.ctrs.remove(c)
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}
