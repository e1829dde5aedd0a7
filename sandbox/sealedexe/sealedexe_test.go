package sealedexe

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func sealSelf(t *testing.T) *Dir {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (fsopen)")
	}
	d, err := Seal("/proc/self/exe")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("no detached tmpfs here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestSealedCopyRefusesWrites tries every way to change the copy that a
// holder of the directory (or of the file, through /proc/<pid>/exe) has.
func TestSealedCopyRefusesWrites(t *testing.T) {
	d := sealSelf(t)
	for _, flags := range []int{unix.O_WRONLY, unix.O_RDWR, unix.O_WRONLY | unix.O_TRUNC} {
		if fd, err := unix.Openat(d.Fd(), Name, flags|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
			t.Errorf("open copy with flags %#x succeeded", flags)
		}
	}
	if fd, err := unix.Openat(d.Fd(), "new", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644); err == nil {
		unix.Close(fd)
		t.Error("created a file next to the copy")
	}
	if err := unix.Unlinkat(d.Fd(), Name, 0); err == nil {
		t.Error("removed the copy")
	}
	if err := unix.Renameat(d.Fd(), Name, d.Fd(), "other"); err == nil {
		t.Error("renamed the copy")
	}
	// Clearing the mount's read-only flag still leaves the superblock
	// read-only and the file immutable.
	if err := unix.MountSetattr(d.Fd(), "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}); err != nil {
		t.Fatalf("clear the mount's read-only flag: %v", err)
	}
	if fd, err := unix.Openat(d.Fd(), Name, unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		t.Error("open copy for writing on a read-write mount succeeded")
	}
	// So does a read-write superblock: the file is immutable.
	fs, err := unix.Fspick(d.Fd(), "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetFlag(fs, "rw"); err != nil {
		t.Fatal(err)
	}
	if err := unix.FsconfigReconfigure(fs); err != nil {
		t.Fatalf("remount the superblock read-write: %v", err)
	}
	if fd, err := unix.Openat(d.Fd(), Name, unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		t.Error("open copy for writing on a read-write superblock succeeded")
	}
}

// TestSealedCopyRunsFromCwd runs the copy the way the stages are started:
// by its relative name from the directory.
func TestSealedCopyRunsFromCwd(t *testing.T) {
	d := sealSelf(t)
	cmd := exec.Command("./"+Name, "-test.run=^$")
	cmd.Dir = d.ProcPath()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run the copy: %v\n%s", err, out)
	}
}
