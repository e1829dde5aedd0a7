package cgroupmgr

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000] with the linear mapping kubelet and runc long used:
// weight = 1 + ((shares-2)*9999)/262142. Zero means unset and stays zero.
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	return 1 + ((shares-2)*9999)/262142
}

// rawValue is a control file written as is, after the typed resources.
type rawValue struct {
	file, value string
}

// resources converts OCI resources to the cgroup2 library's with
// cgroup2.ToResources, then corrects what it gets wrong for us: the cpu
// weight formula, "unlimited" (-1) limits the kernel only accepts as "max",
// and the unified key/values, which it ignores.
func (v *v2) resources(res *specs.LinuxResources) (*cgroup2.Resources, []rawValue, error) {
	if res == nil {
		return &cgroup2.Resources{}, nil, nil
	}
	r := cgroup2.ToResources(res)
	var raw []rawValue

	if cpu := res.CPU; cpu != nil {
		if cpu.Shares != nil {
			if w := SharesToWeight(*cpu.Shares); w != 0 {
				r.CPU.Weight = &w
			} else {
				r.CPU.Weight = nil
			}
		}
		if cpu.Quota != nil || cpu.Period != nil {
			quota := cpu.Quota
			if quota != nil && *quota <= 0 {
				quota = nil // "max"
			}
			r.CPU.Max = cgroup2.NewCPUMax(quota, cpu.Period)
		}
	}

	if mem := res.Memory; mem != nil {
		limit := mem.Limit
		if limit != nil && *limit < 0 {
			r.Memory.Max = nil
			raw = append(raw, rawValue{"memory.max", "max"})
			limit = nil
		}
		if swap := mem.Swap; swap != nil {
			// OCI swap is memory+swap (v1 memsw); v2 memory.swap.max is
			// swap alone.
			switch {
			case *swap < 0:
				r.Memory.Swap = nil
				raw = append(raw, rawValue{"memory.swap.max", "max"})
			case limit == nil:
				return nil, nil, fmt.Errorf("%w: memory swap limit %d without a memory limit", ErrInvalidArgument, *swap)
			case *swap < *limit:
				return nil, nil, fmt.Errorf("%w: memory+swap limit %d below memory limit %d", ErrInvalidArgument, *swap, *limit)
			}
		}
	}

	if r.HugeTlb != nil && !v.has("hugetlb") {
		r.HugeTlb = nil // no hugetlb controller on this host: nothing to limit
	}

	// Unified values go last, so they win over the typed fields.
	for _, k := range slices.Sorted(maps.Keys(res.Unified)) {
		if err := validUnifiedKey(k); err != nil {
			return nil, nil, err
		}
		raw = append(raw, rawValue{k, res.Unified[k]})
	}
	return r, raw, nil
}

// validUnifiedKey accepts a control file name of a controller
// ("memory.high"), not a path, and not a file that moves processes or
// changes the tree.
func validUnifiedKey(k string) error {
	ctrl, _, ok := strings.Cut(k, ".")
	switch {
	case !ok, ctrl == "", strings.ContainsAny(k, "/\x00"), k == "." || k == "..":
		return fmt.Errorf("%w: unified key %q is not a cgroup control file", ErrInvalidArgument, k)
	case ctrl == "cgroup" && k != "cgroup.max.depth" && k != "cgroup.max.descendants":
		return fmt.Errorf("%w: unified key %q may not be set", ErrInvalidArgument, k)
	}
	return nil
}
