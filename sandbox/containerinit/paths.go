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

// maskPath hides p: a file is covered by /dev/null, a directory by an empty
// read-only tmpfs. Paths the container does not have are skipped.
func maskPath(p string) error {
	err := mount("/dev/null", p, p, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) {
		err = mount("tmpfs", p, p, "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %q: %w", p, err)
	}
	return nil
}

// readonlyPath bind-mounts p onto itself and makes the result read-only.
// Paths the container does not have are skipped.
func readonlyPath(p string) error {
	err := mount(p, p, p, "", unix.MS_BIND|unix.MS_REC, "")
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("make %q read-only: %w", p, err)
	}
	if err := remountReadonly(p); err != nil {
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

// sysctlPath maps a sysctl name to its file: "net.ipv4.ip_forward" (or
// "net/ipv4/ip_forward") is /proc/sys/net/ipv4/ip_forward.
func sysctlPath(key string) (string, error) {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	if key == "" || filepath.Clean("/"+rel) != "/"+rel {
		return "", fmt.Errorf("%w: sysctl name %q", ErrInvalidSpec, key)
	}
	return "/proc/sys/" + rel, nil
}

// writeSysctl sets one sysctl through /proc/sys.
func writeSysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	if err := writeFile(p, value); err != nil {
		return fmt.Errorf("set sysctl %q to %q: %w", key, value, err)
	}
	return nil
}

// mkdirCwd creates the process's working directory when the image lacks it
// (as containerd does), owned by root.
func mkdirCwd(cwd string) error {
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("create cwd %q: %w", cwd, err)
	}
	return nil
}
