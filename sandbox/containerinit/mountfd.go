package containerinit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The functions in this file mount by file descriptor (open_tree,
// fsmount, move_mount, mount_setattr): a path is resolved once, into a
// handle, and every later step acts on that handle. A sibling container
// that swaps a directory of a shared volume for a symlink after the check
// cannot redirect the mount (CVE-2021-30465), and nothing is resolved
// through a /proc the container may control.

// inRootFlags resolve a path as if root were "/" (absolute symlinks and
// ".." stay inside it) and refuse magic links (/proc/<pid>/root, fd/N),
// which would lead out of it.
const inRootFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot returns an O_PATH handle on p resolved inside the directory
// root, with openat2(2); a trailing symlink is followed, inside the root.
func openInRoot(root *os.File, p string) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRootFlags}
	fd, err := openat2(int(root.Fd()), p, &how)
	if err != nil {
		return nil, &os.PathError{Op: "open in root", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openat2 is unix.Openat2 retried on EAGAIN and EINTR (the kernel's answer
// to a rename racing the lookup).
func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	var err error
	for range 32 {
		var fd int
		fd, err = unix.Openat2(dirfd, p, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, err
}

// cloneMount returns a detached copy of the mount at the handle src (and,
// with recursive, of every mount below it): a bind mount not attached
// anywhere yet.
func cloneMount(src *os.File, recursive bool) (*os.File, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", flags)
	if err != nil {
		return nil, fmt.Errorf("clone mount of %q: %w", src.Name(), err)
	}
	return os.NewFile(uintptr(fd), src.Name()), nil
}

// attachMount moves the detached (or attached) mount tree onto the
// directory or file behind the handle target. name is for errors.
func attachMount(tree, target *os.File, name string) error {
	err := unix.MoveMount(int(tree.Fd()), "", int(target.Fd()), "",
		unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return &mountError{op: "move mount", source: tree.Name(), target: name, err: err}
	}
	return nil
}

// setMountAttr changes the per-mount flags of the mount at the handle m
// (and every mount below it, with recursive). Only the MS_* flags a bind
// remount takes (remountFlags) are mapped; the others are ignored.
func setMountAttr(m *os.File, flags uintptr, recursive bool) error {
	attr := mountAttr(flags)
	if attr.Attr_set == 0 && attr.Attr_clr == 0 {
		return nil
	}
	at := uint(unix.AT_EMPTY_PATH)
	if recursive {
		at |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(int(m.Fd()), "", at, &attr); err != nil {
		return fmt.Errorf("set mount flags %#x on %q: %w", flags, m.Name(), err)
	}
	return nil
}

// mountAttr maps MS_* flags to mount_setattr(2) attributes.
func mountAttr(flags uintptr) unix.MountAttr {
	var a unix.MountAttr
	for _, f := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&f.ms != 0 {
			a.Attr_set |= f.attr
		}
	}
	// The access-time mode is one field: set one value, clearing the
	// others.
	switch {
	case flags&unix.MS_NOATIME != 0:
		a.Attr_set |= unix.MOUNT_ATTR_NOATIME
	case flags&unix.MS_STRICTATIME != 0:
		a.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
	case flags&unix.MS_RELATIME != 0:
		a.Attr_set |= unix.MOUNT_ATTR_RELATIME
	default:
		return a
	}
	a.Attr_clr |= unix.MOUNT_ATTR__ATIME
	return a
}

// setPropagationFd applies MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE
// (with MS_REC: to every mount below too) to the mount at the handle m.
func setPropagationFd(m *os.File, propagation uintptr) error {
	if propagation == 0 {
		return nil
	}
	attr := unix.MountAttr{Propagation: uint64(propagation &^ unix.MS_REC)}
	at := uint(unix.AT_EMPTY_PATH)
	if propagation&unix.MS_REC != 0 {
		at |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(int(m.Fd()), "", at, &attr); err != nil {
		return fmt.Errorf("set propagation %#x on %q: %w", propagation, m.Name(), err)
	}
	return nil
}

// emptyReadonlyTmpfs returns a fresh, detached, read-only, empty tmpfs:
// what masks a directory.
func emptyReadonlyTmpfs() (*os.File, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open tmpfs context: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "size", "0k"); err != nil {
		return nil, fmt.Errorf("configure tmpfs: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("create tmpfs: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC,
		unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mount tmpfs: %w", err)
	}
	return os.NewFile(uintptr(mfd), "tmpfs"), nil
}

// openDevNull returns an O_PATH handle on the host's /dev/null, checked to
// be the null character device (1:3) and not a symlink or anything else
// put in its place (CVE-2025-31133).
func openDevNull() (*os.File, error) {
	fd, err := unix.Open("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	f := os.NewFile(uintptr(fd), "/dev/null")
	if err := checkCharDevice(fd, 1, 3); err != nil {
		f.Close()
		return nil, fmt.Errorf("/dev/null: %w", err)
	}
	return f, nil
}

// checkCharDevice fails unless the file behind fd is the character device
// major:minor.
func checkCharDevice(fd int, major, minor uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor {
		return fmt.Errorf("not the character device %d:%d (mode %#o, device %d:%d)",
			major, minor, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

// sourceIDOption is the mount option that carries the identity a bind
// mount's source had when the container was created: "x-cubby.source-id=
// DEV:INO". Options starting with "x-" never reach the kernel.
const sourceIDOption = "x-cubby.source-id="

// SourceIDOption returns the mount option recording that a bind source was
// the file dev:ino at create time; the init stage refuses to mount
// anything else from that path.
func SourceIDOption(dev, ino uint64) string {
	return sourceIDOption + strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino, 10)
}

// sourceID is a file's identity: device and inode.
type sourceID struct{ dev, ino uint64 }

func parseSourceID(v string) (sourceID, error) {
	d, i, ok := strings.Cut(v, ":")
	dev, err1 := strconv.ParseUint(d, 10, 64)
	ino, err2 := strconv.ParseUint(i, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return sourceID{}, fmt.Errorf("%w: bad bind source id %q", ErrInvalidSpec, v)
	}
	return sourceID{dev, ino}, nil
}

// ErrBindSourceChanged means a bind mount's host path no longer names the
// file or directory it named when the container was created, or leads
// through a symlink now: it was swapped, and is not followed.
var ErrBindSourceChanged = errors.New("bind mount source changed since the container was created")

// openBindSource returns an O_PATH handle on the host path source. A
// pinned source (want set: a CRI volume, which cubbyd resolved at create
// time) may have no symlink in it now and must still be the file cubbyd
// saw. Sources without a pin are cubby's own (pod files, image volumes,
// bundles written by an older cubbyd): opened as they are.
func openBindSource(source string, want *sourceID) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
	if want != nil {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, err := openat2(unix.AT_FDCWD, source, &how)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%w: %q now leads through a symlink", ErrBindSourceChanged, source)
	}
	if err != nil {
		return nil, fmt.Errorf("open bind mount source %q: %w", source, err)
	}
	f := os.NewFile(uintptr(fd), source)
	if want == nil {
		return f, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat bind mount source %q: %w", source, err)
	}
	if st.Dev != want.dev || st.Ino != want.ino {
		f.Close()
		return nil, fmt.Errorf("%w: %q is device %d inode %d, was device %d inode %d",
			ErrBindSourceChanged, source, st.Dev, st.Ino, want.dev, want.ino)
	}
	return f, nil
}
