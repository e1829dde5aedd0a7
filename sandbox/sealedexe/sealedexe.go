// Package sealedexe keeps the copy of cubby-pod that pod inits and the
// container init and exec stages run from, so that no process a container
// can see has the host's binary as its /proc/<pid>/exe (CVE-2019-5736: a
// container that opens that file can read it, and write it once nothing
// runs it any more).
//
// The copy lives alone in a detached tmpfs: a mount that is in no mount
// namespace (fsopen/fsmount), whose superblock and mount are read-only,
// nodev and nosuid, holding one file, Name, mode 0555, with the immutable
// attribute. Only a process holding the mount's root (a Dir) or a path
// through it reaches the file; a container that gets hold of it (through
// /proc/<pid>/exe or cwd of a stage) can read it but not write it, mount
// over it or change it: the file is immutable (clearing that takes
// CAP_LINUX_IMMUTABLE) and the mount, in no namespace of the container's,
// cannot be unmounted or covered from there.
//
// A memfd sealed with F_SEAL_WRITE, as runc uses, is as immutable, but can
// only be executed by its fd (execveat) or through /proc/self/fd: Go's
// fork offers neither execveat nor a step between joining a container's
// mount namespace and execve, and a /proc resolved there is the
// container's own (CVE-2025-52881). A directory fd can be entered with
// fchdir before the fork and the binary executed by its relative name,
// which needs no /proc at all.
//
// The node's keeper makes one Dir (Seal) and starts every pod init from it
// with the Dir as its working directory; the pod init takes it over
// (FromCwd), so all pods of a node map the same page cache.
package sealedexe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Name is the binary's name in its Dir.
const Name = "cubby-pod"

// fsImmutableFl is FS_IMMUTABLE_FL of FS_IOC_SETFLAGS (linux/fs.h).
const fsImmutableFl = 0x10

// Dir is the root of the detached read-only tmpfs holding the sealed
// binary, open.
type Dir struct {
	f *os.File
}

// Seal copies the binary at src (an open path such as /proc/self/exe,
// which names the running file even after it was replaced on disk) into a
// new detached tmpfs and returns its root.
func Seal(src string) (*Dir, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", src, err)
	}
	defer in.Close()
	mnt, err := newTmpfs()
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", src, err)
	}
	d := &Dir{f: os.NewFile(uintptr(mnt), "sealed-exe")}
	if err := d.fill(in); err != nil {
		d.Close()
		return nil, fmt.Errorf("seal %s: %w", src, err)
	}
	return d, nil
}

// newTmpfs returns the root of a new detached tmpfs, writable for now.
func newTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	for _, kv := range [][2]string{{"mode", "0555"}, {"nr_inodes", "2"}} {
		if err := unix.FsconfigSetString(fs, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("tmpfs option %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return mnt, nil
}

// fill writes the binary into d, makes it immutable, then makes the
// superblock and the mount read-only.
func (d *Dir) fill(in io.Reader) error {
	fd, err := unix.Openat(d.Fd(), Name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o555)
	if err != nil {
		return fmt.Errorf("create copy: %w", err)
	}
	out := os.NewFile(uintptr(fd), Name)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	// A read-only superblock refuses remounts while a file is open for
	// writing: the immutable flag goes on through a read-only fd.
	fd, err = unix.Openat(d.Fd(), Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open copy: %w", err)
	}
	err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, fsImmutableFl)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("make copy immutable: %w", err)
	}
	if err := readOnlySuper(d.Fd()); err != nil {
		return err
	}
	if err := unix.MountSetattr(d.Fd(), "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("make mount read-only: %w", err)
	}
	return d.check()
}

// readOnlySuper remounts the superblock of mount root mnt read-only.
func readOnlySuper(mnt int) error {
	fs, err := unix.Fspick(mnt, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fspick: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetFlag(fs, "ro"); err != nil {
		return fmt.Errorf("read-only superblock: %w", err)
	}
	if err := unix.FsconfigReconfigure(fs); err != nil {
		return fmt.Errorf("read-only superblock: %w", err)
	}
	return nil
}

// FromCwd returns the working directory as a Dir, if it is one and this
// process runs from its binary (the keeper starts pod inits that way);
// otherwise an error saying what is not so.
func FromCwd() (*Dir, error) {
	fd, err := unix.Open(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open working directory: %w", err)
	}
	d := &Dir{f: os.NewFile(uintptr(fd), "sealed-exe")}
	if err := d.check(); err != nil {
		d.Close()
		return nil, fmt.Errorf("working directory: %w", err)
	}
	var self, copy unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		d.Close()
		return nil, err
	}
	if err := unix.Fstatat(d.Fd(), Name, &copy, unix.AT_SYMLINK_NOFOLLOW); err != nil || self.Dev != copy.Dev || self.Ino != copy.Ino {
		d.Close()
		return nil, errors.New("this process does not run from the sealed binary in its working directory")
	}
	return d, nil
}

// ErrNotSealed is returned by check for a directory that is not a sealed
// binary's.
var ErrNotSealed = errors.New("not a sealed binary directory")

// check verifies that d is read-only tmpfs holding Name, immutable.
func (d *Dir) check() error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(d.Fd(), &fs); err != nil {
		return err
	}
	if fs.Type != unix.TMPFS_MAGIC || fs.Flags&unix.ST_RDONLY == 0 {
		return fmt.Errorf("%w: not a read-only tmpfs", ErrNotSealed)
	}
	var st unix.Statx_t
	if err := unix.Statx(d.Fd(), Name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSealed, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Attributes&unix.STATX_ATTR_IMMUTABLE == 0 {
		return fmt.Errorf("%w: %s is not an immutable file", ErrNotSealed, Name)
	}
	return nil
}

// Fd is the directory's descriptor (close-on-exec): fchdir to it and
// execve Name to run the binary from any mount namespace.
func (d *Dir) Fd() int { return int(d.f.Fd()) }

// ProcPath names the directory through this process's /proc/self/fd, for
// a chdir in the host's mount namespace (before the fork's descriptors are
// rearranged: syscall.ProcAttr.Dir). Never resolve it in a container's.
func (d *Dir) ProcPath() string { return "/proc/self/fd/" + strconv.Itoa(d.Fd()) }

// Close closes the directory; the mount goes with the last reference to
// it (processes running the binary keep theirs).
func (d *Dir) Close() error { return d.f.Close() }
