package framework

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CgroupMounts returns the mount points of every cgroup v1 hierarchy and of
// the cgroup v2 hierarchy (on a hybrid host, /sys/fs/cgroup/unified), each
// once.
func CgroupMounts() ([]Mount, error) {
	mounts, err := Mounts()
	if err != nil {
		return nil, err
	}
	var out []Mount
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		// One hierarchy may be mounted twice; its options identify it.
		key := m.FSType + " " + m.SuperOpts
		if seen[key] || m.Root != "/" {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	return out, nil
}

// MemoryCgroup returns pid's memory cgroup path (as in /proc/<pid>/cgroup)
// and the file holding its memory limit: memory.limit_in_bytes in the v1
// memory hierarchy when one is mounted (hybrid hosts), else memory.max in
// the v2 hierarchy.
func MemoryCgroup(pid int) (path, limitFile string, err error) {
	mounts, err := CgroupMounts()
	if err != nil {
		return "", "", err
	}
	for _, m := range mounts {
		if m.FSType == "cgroup" && slices.Contains(strings.Split(m.SuperOpts, ","), "memory") {
			if path, err = CgroupOf(pid, "memory"); err != nil {
				return "", "", err
			}
			return path, filepath.Join(m.MountPoint, path, "memory.limit_in_bytes"), nil
		}
	}
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			if path, err = CgroupOf(pid, ""); err != nil {
				return "", "", err
			}
			return path, filepath.Join(m.MountPoint, path, "memory.max"), nil
		}
	}
	return "", "", fmt.Errorf("memory cgroup of %d: no memory hierarchy mounted", pid)
}

// RemoveCgroup removes the cgroup at path (relative to each hierarchy's
// root, e.g. "/critest-1a2b3c") and everything below it from every mounted
// hierarchy. A process still inside is a leak: it is reported on t, killed,
// and waited for before the directories go.
func RemoveCgroup(t testing.TB, path string) {
	t.Helper()
	if path == "" || filepath.Clean("/"+path) == "/" {
		t.Errorf("refusing to remove cgroup %q", path)
		return
	}
	mounts, err := CgroupMounts()
	if err != nil {
		t.Errorf("remove cgroup %s: %v", path, err)
		return
	}
	for _, m := range mounts {
		if err := removeCgroupTree(t, filepath.Join(m.MountPoint, path)); err != nil {
			t.Errorf("remove cgroup %s: %v", path, err)
		}
	}
}

func removeCgroupTree(t testing.TB, top string) error {
	var dirs []string
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Kill everything first, then remove leaves before their parents.
	for _, dir := range dirs {
		pids, err := cgroupProcs(dir)
		if err != nil {
			return err
		}
		for _, pid := range pids {
			t.Errorf("leak: process %d (%s) still in cgroup %s: killing it", pid, Comm(pid), dir)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, dir := range slices.Backward(dirs) {
		if err := waitCgroupEmpty(dir); err != nil {
			return err
		}
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
	}
	return nil
}

func waitCgroupEmpty(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := cgroupProcs(dir)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds %v after SIGKILL", dir, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cgroupProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read processes of cgroup %s: %w", dir, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
