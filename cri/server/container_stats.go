package server

import (
	"context"
	"errors"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
	"cubby/cri/store"
)

// ContainerStats reports a container's CPU and memory use from its cgroup.
func (s *Server) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStats(c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the use of every container the filter selects.
// kubelet polls it: one cgroup read per container, no lock held across it.
func (s *Server) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := r.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range s.objs.ctrs.list() {
		if f.GetId() != "" && !strings.HasPrefix(c.id, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.status().PodID, f.GetPodSandboxId()) {
			continue
		}
		if !matchLabels(c.config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		st, err := s.containerStats(c)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// containerStats reads c's cgroup; a container that is not running (no
// cgroup, or one being removed) reports its attributes only.
func (s *Server) containerStats(c *container) (*runtimeapi.ContainerStats, error) {
	rec := c.status()
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id:          c.id,
		Metadata:    c.config.GetMetadata(),
		Labels:      c.config.GetLabels(),
		Annotations: c.config.GetAnnotations(),
	}}
	if rec.State != store.ContainerRunning {
		return out, nil
	}
	cs, err := s.cgroups.Stats(rec.CgroupPath)
	if errors.Is(err, cgroupmgr.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	out.Cpu = &runtimeapi.CpuUsage{
		Timestamp:            now,
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cs.CPUUsageNanos},
	}
	out.Memory = &runtimeapi.MemoryUsage{
		Timestamp:       now,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: cs.MemoryWorkingSetBytes},
		UsageBytes:      &runtimeapi.UInt64Value{Value: cs.MemoryUsageBytes},
	}
	return out, nil
}
