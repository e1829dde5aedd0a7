package netcni

import (
	"errors"

	"golang.org/x/sys/unix"
)

// isNetNS reports whether path is a network namespace a plugin can enter:
// a bind mount of an nsfs inode (or, on old kernels, a procfs ns link) of
// type CLONE_NEWNET. A missing file, or a file whose bind mount was lost
// (for instance after a reboot emptied the state dir's mounts), is not.
func isNetNS(path string) bool {
	if path == "" {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return true // kernel older than 4.11: cannot tell the type
	}
	return err == nil && typ == unix.CLONE_NEWNET
}
