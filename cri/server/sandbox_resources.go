package server

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// ownsPodCgroup tells whether cubby made pod p's cgroup (no cgroup_parent
// in its config). kubelet sizes the pod cgroups it makes itself, before it
// tells the runtime: cubby then leaves them alone.
func ownsPodCgroup(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetCgroupParent() == ""
}

// podCgroupResources are the limits of a pod cgroup: the pod-level
// resources (the sum of its containers', or the pod's own) plus the
// runtime class overhead. Unset limits stay unset.
func podCgroupResources(overhead, resources *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if resources == nil && overhead == nil {
		return nil
	}
	sum := &runtimeapi.LinuxContainerResources{
		CpusetCpus: resources.GetCpusetCpus(),
		CpusetMems: resources.GetCpusetMems(),
	}
	if m := resources.GetMemoryLimitInBytes(); m > 0 {
		sum.MemoryLimitInBytes = m + overhead.GetMemoryLimitInBytes()
	}
	if sh := resources.GetCpuShares(); sh > 0 {
		sum.CpuShares = sh + overhead.GetCpuShares()
	}
	if resources.GetCpuQuota() < 0 {
		sum.CpuQuota = -1 // lifted: the pod has a container without a cpu limit
	}
	if q := resources.GetCpuQuota(); q > 0 {
		period := resources.GetCpuPeriod()
		if period <= 0 {
			period = 100000
		}
		sum.CpuPeriod = period
		sum.CpuQuota = q
		// The overhead's quota is in its own period: scale it.
		if oq, op := overhead.GetCpuQuota(), overhead.GetCpuPeriod(); oq > 0 {
			if op <= 0 {
				op = 100000
			}
			sum.CpuQuota += oq * period / op
		}
	}
	return linuxResources(sum)
}

// UpdatePodSandboxResources applies new pod-level resources (an in-place
// pod resize) to a pod cgroup cubby owns. kubelet calls it after resizing
// the pod cgroups it manages itself; those are left as kubelet set them.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := p.status()
	if rec.State != store.PodReady {
		return nil, fmt.Errorf("pod sandbox %q is not ready: %w", p.id, errFailedPrecondition)
	}
	if !ownsPodCgroup(p.config) {
		return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
	}
	res := podCgroupResources(r.GetOverhead(), r.GetResources())
	if res == nil {
		return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
	}
	if err := s.cgroups.Update(rec.CgroupParent, res); err != nil {
		return nil, fmt.Errorf("update cgroup of pod sandbox %q: %w", p.id, err)
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
