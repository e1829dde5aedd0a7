package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Controllers are enabled, where the host has them, in the
// cgroup.subtree_control of every ancestor of a cgroup we create, whether or
// not its resources use them: a later Update or Stats may.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids", "hugetlb"}

// v2 drives the cgroup v2 unified hierarchy mounted at mountpoint.
type v2 struct {
	mountpoint string
	// available are the controllers of the root cgroup.
	available []string
}

func newV2(mountpoint string) (*v2, error) {
	s, err := readFile(filepath.Join(mountpoint, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup v2 controllers: %w", err)
	}
	return &v2{mountpoint: mountpoint, available: strings.Fields(s)}, nil
}

func (v *v2) version() int { return 2 }

func (v *v2) dirs(path string) []string {
	return []string{filepath.Join(v.mountpoint, path)}
}

func (v *v2) has(controller string) bool { return slices.Contains(v.available, controller) }

func (v *v2) create(path string, res *specs.LinuxResources) error {
	r, raw, err := v.resources(res)
	if err != nil {
		return err
	}
	dir := filepath.Join(v.mountpoint, path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := v.enableControllers(path); err != nil {
		return err
	}
	return v.apply(path, r, raw)
}

func (v *v2) update(path string, res *specs.LinuxResources) error {
	r, raw, err := v.resources(res)
	if err != nil {
		return err
	}
	return v.apply(path, r, raw)
}

func (v *v2) apply(path string, r *cgroup2.Resources, raw []rawValue) error {
	m, err := cgroup2.Load(path, cgroup2.WithMountpoint(v.mountpoint))
	if err != nil {
		return err
	}
	if err := m.Update(r); err != nil {
		return err
	}
	dir := filepath.Join(v.mountpoint, path)
	for _, kv := range raw {
		if err := writeFile(filepath.Join(dir, kv.file), kv.value); err != nil {
			return err
		}
	}
	return nil
}

// enableControllers turns on v2Controllers in the subtree_control of every
// ancestor of path, top down, each one only if its parent passes it down.
// The cgroup itself is left alone so that it can hold processes.
func (v *v2) enableControllers(path string) error {
	dir := v.mountpoint
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, part := range parts {
		if err := v.enableIn(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
	}
	return nil
}

func (v *v2) enableIn(dir string) error {
	avail, err := readFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	enabled, err := readFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	var add []string
	for _, c := range v2Controllers {
		if slices.Contains(strings.Fields(avail), c) && !slices.Contains(strings.Fields(enabled), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " ")); err != nil {
		return fmt.Errorf("enable controllers %v: %w", add, err)
	}
	return nil
}

// kill uses cgroup.kill (Linux 5.14+), which kills the whole subtree
// atomically, and falls back to freeze, SIGKILL each process, thaw.
func (v *v2) kill(path string) error {
	dir := filepath.Join(v.mountpoint, path)
	err := writeFile(filepath.Join(dir, "cgroup.kill"), "1")
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, serr := os.Stat(dir); serr != nil {
		return nil // the cgroup itself is gone
	}
	return v.freezeKill(dir)
}

func (v *v2) freezeKill(dir string) (err error) {
	freeze := filepath.Join(dir, "cgroup.freeze")
	ferr := writeFile(freeze, "1")
	if ferr == nil {
		defer func() {
			if terr := writeFile(freeze, "0"); terr != nil && err == nil {
				err = fmt.Errorf("thaw: %w", terr)
			}
		}()
		if _, err := waitFor(freezeTimeout, func() (bool, error) { return v2Frozen(dir) }); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
	} else if !errors.Is(ferr, os.ErrNotExist) { // no freezer before Linux 5.2
		return fmt.Errorf("freeze: %w", ferr)
	}
	pids, err := pidsIn([]string{dir})
	if err != nil {
		return err
	}
	return killPids(pids)
}

func v2Frozen(dir string) (bool, error) {
	s, err := readFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "frozen 1" {
			return true, nil
		}
	}
	return false, nil
}

func (v *v2) stats(path string) (Stats, error) {
	if _, err := os.Stat(v.dirs(path)[0]); errors.Is(err, os.ErrNotExist) {
		return Stats{}, fmt.Errorf("cgroup %q: %w", path, ErrNotFound)
	}
	m, err := cgroup2.Load(path, cgroup2.WithMountpoint(v.mountpoint))
	if err != nil {
		return Stats{}, err
	}
	// Missing files (controller not enabled here) read as zero.
	st, err := m.StatFiltered(cgroup2.StatCPU | cgroup2.StatMemory)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{CPUUsageNanos: st.GetCPU().GetUsageUsec() * 1000}
	if mem := st.GetMemory(); mem != nil {
		s.MemoryUsageBytes = mem.GetUsage()
		s.MemoryWorkingSetBytes = workingSet(s.MemoryUsageBytes, mem.GetInactiveFile())
	}
	return s, nil
}
