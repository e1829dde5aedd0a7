package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// devSymlinks are the links every container's /dev has, name -> target.
var devSymlinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"core", "/proc/kcore"},
	// The devpts instance mounted on /dev/pts has its own ptmx; point
	// /dev/ptmx at it so ptys opened in the container are the container's.
	{"ptmx", "pts/ptmx"},
}

// populatesDev reports whether the spec gives the container a fresh /dev
// that we fill. A /dev bind-mounted from the host or a volume is the
// container's /dev as it is: no device node or symlink is ever made in it
// (a sibling sharing the volume could swap them, CVE-2025-31133).
func populatesDev(mounts []specs.Mount) bool {
	for _, m := range mounts {
		if filepath.Clean(m.Destination) == "/dev" && (m.Type == "bind" || parseMountOptions(m.Options).bind) {
			return false
		}
	}
	// A fresh /dev, or none at all: devices go into the image's own /dev
	// directory.
	return true
}

// createDevice makes the device node d inside the root. When mknod is not
// allowed (EPERM, e.g. inside a user namespace) the host's node of the
// same path is bind-mounted instead.
func (r *rootfs) createDevice(d specs.LinuxDevice) error {
	if d.Path == "" {
		return fmt.Errorf("%w: device without path", ErrInvalidSpec)
	}
	typ, err := deviceType(d.Type)
	if err != nil {
		return fmt.Errorf("device %q: %w", d.Path, err)
	}
	perm := os.FileMode(0o666)
	if d.FileMode != nil {
		perm = *d.FileMode
	}
	resolved, err := r.resolve(d.Path)
	if err != nil {
		return err
	}
	parent, err := r.mkdirAll(filepath.Dir(resolved))
	if err != nil {
		return err
	}
	defer parent.Close()
	dirfd, base := int(parent.Fd()), filepath.Base(resolved)

	// Replace whatever the image or the /dev tmpfs has at that name.
	if err := unix.Unlinkat(dirfd, base, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove existing %q: %w", resolved, err)
	}
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	err = unix.Mknodat(dirfd, base, typ|uint32(perm.Perm()), int(dev))
	if errors.Is(err, unix.EPERM) {
		return r.bindDevice(d.Path, resolved)
	}
	if err != nil {
		return fmt.Errorf("mknod %q: %w", resolved, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dirfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %q: %w", resolved, err)
	}
	return nil
}

// bindDevice bind-mounts the host node hostPath onto the in-root path dest.
func (r *rootfs) bindDevice(hostPath, dest string) error {
	f, err := r.mkfile(dest)
	if err != nil {
		return err
	}
	f.Close()
	return r.mountAt(hostPath, dest, "", unix.MS_BIND, "")
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("%w: unknown device type %q", ErrInvalidSpec, t)
}

// createDevSymlinks adds devSymlinks to the root's /dev, replacing what is
// there (the image may ship a /dev/ptmx node).
func (r *rootfs) createDevSymlinks() error {
	dev, err := r.mkdirAll("/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, l := range devSymlinks {
		name, target := l[0], l[1]
		if err := unix.Unlinkat(int(dev.Fd()), name, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("remove existing %q: %w", "/dev/"+name, err)
		}
		if err := unix.Symlinkat(target, int(dev.Fd()), name); err != nil {
			return fmt.Errorf("symlink %q to %q: %w", "/dev/"+name, target, err)
		}
	}
	return nil
}
