package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
	"cubby/cri/store"
	"cubby/sandbox"
)

// PodSandboxStats reports a pod's resource use: its cgroup's CPU, memory
// and process count, its network interfaces, and its containers' stats.
func (s *Server) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st, err := s.podStats(p)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of every pod the filter selects.
func (s *Server) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	var out []*runtimeapi.PodSandboxStats
	err := s.eachPodStats(r.GetFilter(), func(st *runtimeapi.PodSandboxStats) error {
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// eachPodStats calls fn with the stats of every pod f selects.
func (s *Server) eachPodStats(f *runtimeapi.PodSandboxStatsFilter, fn func(*runtimeapi.PodSandboxStats) error) error {
	for _, p := range s.objs.pods.list() {
		if f.GetId() != "" && !strings.HasPrefix(p.id, f.GetId()) {
			continue
		}
		if !matchLabels(p.config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		st, err := s.podStats(p)
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

// podStats reads pod p's stats. A pod that is not ready reports its
// attributes only, as its cgroup and namespaces are gone or going.
func (s *Server) podStats(p *pod) (*runtimeapi.PodSandboxStats, error) {
	rec := p.status()
	out := &runtimeapi.PodSandboxStats{Attributes: &runtimeapi.PodSandboxAttributes{
		Id:          p.id,
		Metadata:    p.config.GetMetadata(),
		Labels:      p.config.GetLabels(),
		Annotations: p.config.GetAnnotations(),
	}}
	if rec.State != store.PodReady {
		return out, nil
	}
	now := time.Now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{}
	out.Linux = linux

	cs, err := s.cgroups.Stats(rec.CgroupParent)
	switch {
	case errors.Is(err, cgroupmgr.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("stats of pod %q: %w", p.id, err)
	default:
		linux.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cs.CPUUsageNanos}}
		linux.Memory = &runtimeapi.MemoryUsage{
			Timestamp:       now,
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: cs.MemoryWorkingSetBytes},
			UsageBytes:      &runtimeapi.UInt64Value{Value: cs.MemoryUsageBytes},
		}
	}
	if pids, err := s.cgroups.Pids(rec.CgroupParent); err == nil {
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{Value: uint64(len(pids))}}
	}
	if !namespacesOf(p.config).hostNetwork {
		ifs, err := s.rt.PodNetworkStats(p.id, rec.Pid)
		if err != nil {
			return nil, err
		}
		linux.Network = networkUsage(now, ifs)
	}
	for _, c := range s.objs.podContainers(p.id) {
		st, err := s.containerStats(c)
		if err != nil {
			return nil, err
		}
		linux.Containers = append(linux.Containers, st)
	}
	return out, nil
}

// networkUsage maps interface counters to CRI's; eth0 (the CNI interface)
// is the default one.
func networkUsage(now int64, ifs []sandbox.InterfaceStats) *runtimeapi.NetworkUsage {
	if len(ifs) == 0 {
		return nil
	}
	out := &runtimeapi.NetworkUsage{Timestamp: now}
	for _, i := range ifs {
		u := &runtimeapi.NetworkInterfaceUsage{
			Name:     i.Name,
			RxBytes:  &runtimeapi.UInt64Value{Value: i.RxBytes},
			RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
			TxBytes:  &runtimeapi.UInt64Value{Value: i.TxBytes},
			TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors},
		}
		if i.Name == "eth0" {
			out.DefaultInterface = u
		} else {
			out.Interfaces = append(out.Interfaces, u)
		}
	}
	if out.DefaultInterface == nil {
		out.DefaultInterface, out.Interfaces = out.Interfaces[0], out.Interfaces[1:]
	}
	return out
}
