package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Controllers are the cgroup v1 controllers a pod or container cgroup is
// made in, where the host mounts them.
var v1Controllers = []cgroup1.Name{
	cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Cpuset, cgroup1.Memory,
	cgroup1.Pids, cgroup1.Blkio, cgroup1.Devices, cgroup1.Freezer,
	cgroup1.Hugetlb,
}

// freezeTimeout bounds the wait for a v1 freezer to reach FROZEN. A task in
// uninterruptible sleep can keep a cgroup FREEZING; killing proceeds anyway.
const freezeTimeout = time.Second

// v1Subsystem is a cgroup1 subsystem with its own directory tree.
type v1Subsystem interface {
	cgroup1.Subsystem
	Path(path string) string
}

// v1 drives cgroup v1: one hierarchy per mounted controller (or per group of
// co-mounted controllers).
type v1 struct {
	// subsystems are the mounted, writable controllers from v1Controllers.
	subsystems []cgroup1.Subsystem
	// roots maps each distinct hierarchy root (symlinks resolved, so
	// co-mounted "cpu,cpuacct" counts once) to the subsystem that owns it.
	roots []v1Subsystem
	// swapAccounting: memory.memsw.* exists.
	swapAccounting bool
}

func newV1() (*v1, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("find cgroup v1 hierarchies: %w", err)
	}
	v := &v1{}
	seen := map[string]bool{}
	for _, s := range all {
		ps, ok := s.(v1Subsystem)
		if !ok || !wantV1(s.Name()) {
			continue
		}
		root, err := filepath.EvalSymlinks(ps.Path("/"))
		if err != nil {
			continue // not mounted
		}
		// A hierarchy we cannot write (read-only mount, user namespace)
		// is skipped rather than failing every Create.
		if unix.Access(root, unix.W_OK) != nil {
			continue
		}
		v.subsystems = append(v.subsystems, s)
		if !seen[root] {
			seen[root] = true
			v.roots = append(v.roots, ps)
		}
		if s.Name() == cgroup1.Memory {
			_, err := os.Stat(filepath.Join(root, "memory.memsw.limit_in_bytes"))
			v.swapAccounting = err == nil
		}
	}
	if len(v.subsystems) == 0 {
		return nil, fmt.Errorf("no writable cgroup v1 controller under %s: %w", cgroupRoot, ErrUnsupported)
	}
	return v, nil
}

func wantV1(n cgroup1.Name) bool {
	for _, w := range v1Controllers {
		if n == w {
			return true
		}
	}
	return false
}

func (v *v1) version() int { return 1 }

func (v *v1) hierarchy() ([]cgroup1.Subsystem, error) { return v.subsystems, nil }

func (v *v1) subsystem(n cgroup1.Name) v1Subsystem {
	for _, s := range v.subsystems {
		if s.Name() == n {
			return s.(v1Subsystem)
		}
	}
	return nil
}

func (v *v1) dirs(path string) []string {
	dirs := make([]string, 0, len(v.roots))
	for _, s := range v.roots {
		dirs = append(dirs, s.Path(path))
	}
	return dirs
}

func (v *v1) create(path string, res *specs.LinuxResources) error {
	r, err := v.resources(res)
	if err != nil {
		return err
	}
	// cgroup1.New makes the directories (parents too, with cpuset.cpus and
	// cpuset.mems copied down so processes can join) and writes r.
	if _, err := cgroup1.New(cgroup1.StaticPath(path), r, cgroup1.WithHierarchy(v.hierarchy)); err != nil {
		return err
	}
	return v.fixups(path, r)
}

func (v *v1) update(path string, res *specs.LinuxResources) error {
	r, err := v.resources(res)
	if err != nil {
		return err
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(v.hierarchy))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return ErrNotFound
		}
		return err
	}
	if err := cg.Update(r); err != nil {
		return err
	}
	return v.fixups(path, r)
}

// resources adapts res to this host's cgroup v1: never nil, swap limits
// dropped when the kernel does no swap accounting, unified keys refused.
func (v *v1) resources(res *specs.LinuxResources) (*specs.LinuxResources, error) {
	if res == nil {
		return &specs.LinuxResources{}, nil
	}
	if len(res.Unified) > 0 {
		return nil, fmt.Errorf("%w: unified resources need cgroup v2", ErrInvalidArgument)
	}
	r := *res
	if r.Memory != nil && r.Memory.Swap != nil && !v.swapAccounting {
		mem := *r.Memory
		mem.Swap = nil
		r.Memory = &mem
	}
	return &r, nil
}

// fixups writes what the cgroup1 library leaves out: it never resets
// pids.max to unlimited.
func (v *v1) fixups(path string, r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit > 0 {
		return nil
	}
	s := v.subsystem(cgroup1.Pids)
	if s == nil {
		return nil
	}
	return writeFile(filepath.Join(s.Path(path), "pids.max"), "max")
}

// kill freezes the cgroup (when the freezer is mounted) so nothing forks
// while it is being killed, SIGKILLs every process, and thaws it so the
// signals are delivered.
func (v *v1) kill(path string) (err error) {
	if f := v.subsystem(cgroup1.Freezer); f != nil {
		state := filepath.Join(f.Path(path), "freezer.state")
		ferr := v1Freeze(state)
		if !errors.Is(ferr, os.ErrNotExist) {
			// Thaw even after a failed freeze: it may have half worked.
			defer func() {
				if terr := writeFile(state, "THAWED"); terr != nil && err == nil {
					err = fmt.Errorf("thaw: %w", terr)
				}
			}()
			if ferr != nil {
				return fmt.Errorf("freeze: %w", ferr)
			}
		}
	}
	pids, err := pidsIn(v.dirs(path))
	if err != nil {
		return err
	}
	return killPids(pids)
}

func v1Freeze(state string) error {
	if err := writeFile(state, "FROZEN"); err != nil {
		return err
	}
	_, err := waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(state)
		return strings.EqualFold(s, string(cgroup1.Frozen)), err
	})
	return err
}

// stats reads just the three files kubelet's numbers come from
// (cpuacct.usage, memory.usage_in_bytes, memory.stat): ListContainerStats
// calls this for every container every few seconds, so the library's
// read-every-controller Stat is too slow here.
func (v *v1) stats(path string) (Stats, error) {
	var s Stats
	if cpu := v.subsystem(cgroup1.Cpuacct); cpu != nil {
		usage, err := readUint(filepath.Join(cpu.Path(path), "cpuacct.usage"))
		if err != nil {
			return Stats{}, err
		}
		s.CPUUsageNanos = usage
	}
	if mem := v.subsystem(cgroup1.Memory); mem != nil {
		dir := mem.Path(path)
		usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
		if err != nil {
			return Stats{}, err
		}
		inactive, err := memoryStat(filepath.Join(dir, "memory.stat"), "total_inactive_file")
		if err != nil {
			return Stats{}, err
		}
		s.MemoryUsageBytes = usage
		s.MemoryWorkingSetBytes = workingSet(usage, inactive)
	}
	return s, nil
}
