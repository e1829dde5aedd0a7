package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts and cgroups")
	}
}

func TestUnmountUnder(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	outer := filepath.Join(dir, "a")
	inner := filepath.Join(outer, "b")
	if err := os.Mkdir(outer, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", outer, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(outer, unix.MNT_DETACH) })
	if err := os.Mkdir(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inner, unix.MNT_DETACH) })

	found, err := UnmountUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].MountPoint != inner || found[1].MountPoint != outer {
		t.Errorf("found %+v, want %s then %s", found, inner, outer)
	}
	if again, err := UnmountUnder(dir); err != nil || len(again) != 0 {
		t.Errorf("second pass found %+v, %v; want nothing", again, err)
	}
}

func TestProcessAndNamespaces(t *testing.T) {
	self, err := ProcessOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if alive, err := self.Alive(); err != nil || !alive {
		t.Errorf("self alive = %v, %v", alive, err)
	}
	if alive, _ := (Process{Pid: self.Pid, StartTime: self.StartTime + 1}).Alive(); alive {
		t.Error("a different start time must not count as the same process")
	}
	a, err := NamespaceOf(0, "net")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NamespaceOf(os.Getpid(), "net")
	if err != nil || a != b {
		t.Errorf("own netns %q vs %q (%v)", a, b, err)
	}
	if _, err := StatusField(os.Getpid(), "NSpid"); err != nil {
		t.Error(err)
	}
}

// recorder counts errors reported through testing.TB.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors++
	r.TB.Logf("(expected) "+format, args...)
}

func TestRemoveCgroupKillsLeaks(t *testing.T) {
	requireRoot(t)
	mounts, err := CgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	parent := "/critest-fw-" + RandomHex(3)
	t.Cleanup(func() { RemoveCgroup(t, parent) })

	// A child cgroup with a process in it, in the first hierarchy.
	child := filepath.Join(mounts[0].MountPoint, parent, "leaf")
	if err := os.MkdirAll(child, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(child, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{TB: t}
	RemoveCgroup(rec, parent)
	if rec.errors != 1 {
		t.Errorf("reported %d errors, want 1 (the leaked sleep)", rec.errors)
	}
	if _, err := os.Stat(filepath.Join(mounts[0].MountPoint, parent)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still exists: %v", parent, err)
	}
}

func TestMemoryCgroup(t *testing.T) {
	path, file, err := MemoryCgroup(os.Getpid())
	if err != nil {
		t.Skipf("no memory cgroup: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("memory cgroup %s: limit file: %v", path, err)
	}
}
