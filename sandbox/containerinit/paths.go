package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The functions in this file run after pivot_root, so "/" is the
// container's root and every path, symlinks included, resolves inside it.

// openRoot returns an O_PATH handle on "/", the container's root.
func openRoot() (*os.File, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	return os.NewFile(uintptr(fd), "/"), nil
}

// maskPath hides p: a file is covered by null (a detached bind of the
// host's /dev/null), a directory by a fresh empty read-only tmpfs. p is
// resolved once inside root; paths the container does not have are
// skipped.
func maskPath(root *os.File, p string, null *os.File) error {
	target, err := openInRoot(root, p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %q: %w", p, err)
	}
	defer target.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return fmt.Errorf("mask %q: %w", p, err)
	}
	cover := null
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		tmpfs, err := emptyReadonlyTmpfs()
		if err != nil {
			return fmt.Errorf("mask %q: %w", p, err)
		}
		defer tmpfs.Close()
		cover = tmpfs
	}
	if err := attachMount(cover, target, p); err != nil {
		return fmt.Errorf("mask %q: %w", p, err)
	}
	return nil
}

// readonlyPath binds p onto itself (with every mount below it) and makes
// the top of the result read-only before it is attached. p is resolved
// once inside root; paths the container does not have are skipped.
func readonlyPath(root *os.File, p string) error {
	target, err := openInRoot(root, p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("make %q read-only: %w", p, err)
	}
	defer target.Close()
	tree, err := cloneMount(target, true)
	if err != nil {
		return fmt.Errorf("make %q read-only: %w", p, err)
	}
	defer tree.Close()
	if err := setMountAttr(tree, unix.MS_RDONLY, false); err != nil {
		return fmt.Errorf("make %q read-only: %w", p, err)
	}
	if err := attachMount(tree, target, p); err != nil {
		return fmt.Errorf("make %q read-only: %w", p, err)
	}
	return nil
}

// remountReadonly remounts the bind mount at p read-only, keeping its other
// flags (a bind remount clears every flag it does not restate).
func remountReadonly(p string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("statfs %q: %w", p, err)
	}
	flags := statfsToMountFlags(uint64(st.Flags)) | unix.MS_RDONLY
	return mount("", p, p, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
}

// sysctlPath maps a sysctl name to its file below /proc: "net.ipv4.ip_forward"
// (or "net/ipv4/ip_forward") is sys/net/ipv4/ip_forward.
func sysctlPath(key string) (string, error) {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	if key == "" || filepath.Clean("/"+rel) != "/"+rel {
		return "", fmt.Errorf("%w: sysctl name %q", ErrInvalidSpec, key)
	}
	return "sys/" + rel, nil
}

// writeSysctl sets one sysctl through the procfs at /proc, checked to be
// one, with no mount or magic link crossed below it (writeProcFile).
func writeSysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	if err := writeProcFile(p, value); err != nil {
		return fmt.Errorf("set sysctl %q to %q: %w", key, value, err)
	}
	return nil
}

// openCwd returns a handle on the working directory cwd of the exec
// stage, resolved inside the container's root with no magic link followed.
// It is never created here: the container's init made it.
func openCwd(cwd string) (*os.File, error) {
	root, err := openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := openInRoot(root, cwd)
	if err != nil {
		return nil, fmt.Errorf("open cwd %q: %w", cwd, err)
	}
	return f, nil
}
