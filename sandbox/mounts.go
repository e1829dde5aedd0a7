package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"cubby/sandbox/containerinit"
)

// Errors of ResolveBindSource; the request is at fault.
var (
	// ErrBindSourceMissing means a bind mount's host path does not exist.
	ErrBindSourceMissing = errors.New("bind mount source does not exist")
	// ErrBindPropagation means the host mount of a bind mount's source
	// cannot propagate the way the mount asks.
	ErrBindPropagation = errors.New("bind mount source cannot propagate as asked")
)

// Propagation is how mounts propagate between a bind mount's host path and
// the container.
type Propagation int

const (
	// PropagationPrivate: nothing propagates.
	PropagationPrivate Propagation = iota
	// PropagationHostToContainer: mounts on the host appear in the
	// container (rslave); the host mount must be shared or a slave.
	PropagationHostToContainer
	// PropagationBidirectional: mounts propagate both ways (rshared); the
	// host mount must be shared.
	PropagationBidirectional
)

// ResolveBindSource checks a bind mount's host path and returns it with
// symlinks resolved (the container gets what the link points to, as
// containerd does). A missing path is ErrBindSourceMissing; a propagation
// the host mount under the path cannot provide is ErrBindPropagation,
// naming that mount.
func ResolveBindSource(path string, p Propagation) (string, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %q", ErrBindSourceMissing, path)
		}
		return "", fmt.Errorf("bind mount source %q: %w", path, err)
	}
	if p == PropagationPrivate {
		return resolved, nil
	}
	m, err := mountOf(resolved)
	if err != nil {
		return "", fmt.Errorf("bind mount source %q: %w", path, err)
	}
	shared := strings.Contains(m.Optional, "shared:")
	slave := strings.Contains(m.Optional, "master:")
	switch {
	case p == PropagationBidirectional && !shared:
		return "", fmt.Errorf("%w: %q is on mount %q, which is not shared (make it rshared for bidirectional propagation)", ErrBindPropagation, path, m.Mountpoint)
	case p == PropagationHostToContainer && !shared && !slave:
		return "", fmt.Errorf("%w: %q is on mount %q, which is neither shared nor a slave (make it rshared for host-to-container propagation)", ErrBindPropagation, path, m.Mountpoint)
	}
	return resolved, nil
}

// PinBindSource returns the mount option that records what the resolved
// bind source names now (its device and inode). The container's init
// stage mounts only that: a source that was replaced, or now leads
// through a symlink, fails the start instead of being followed.
func PinBindSource(resolved string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(resolved, &st); err != nil {
		return "", fmt.Errorf("bind mount source %q: %w", resolved, err)
	}
	return containerinit.SourceIDOption(st.Dev, st.Ino), nil
}

// mountOf returns the mount that path (symlink-free) is on: the deepest
// mount point above it.
func mountOf(path string) (*mountinfo.Info, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		// Later entries are mounted on top of earlier ones at the same
		// point: the last of the longest wins.
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no mount holds %q", path)
	}
	return best, nil
}

// MakeImageVolumes creates the directories an image declares as volumes
// (Dockerfile VOLUME) in the container's rootfs, resolved inside it, so
// that the container finds them there and writable, as with containerd.
// A path already present is left as it is.
// It returns their host paths (inside the writable layer), resolved
// inside rootfs, in the order of volumes.
func MakeImageVolumes(rootfs string, volumes []string) ([]string, error) {
	paths := make([]string, 0, len(volumes))
	for _, v := range volumes {
		if err := pathrs.MkdirAll(rootfs, v, 0o755); err != nil {
			return nil, fmt.Errorf("create image volume %q: %w", v, err)
		}
		p, err := securejoin.SecureJoin(rootfs, v)
		if err != nil {
			return nil, fmt.Errorf("resolve image volume %q: %w", v, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// ErrImageSubPath means an image volume's sub_path is not in the image.
var ErrImageSubPath = errors.New("image volume sub path not found")

// ResolveImageSubPath returns the host path of sub inside the image volume
// mounted at root, resolved inside it (an image's symlinks cannot lead out).
// sub must exist in the image.
func ResolveImageSubPath(root, sub string) (string, error) {
	if sub == "" {
		return root, nil
	}
	p, err := securejoin.SecureJoin(root, sub)
	if err != nil {
		return "", fmt.Errorf("resolve sub path %q: %w", sub, err)
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %q", ErrImageSubPath, sub)
		}
		return "", fmt.Errorf("sub path %q: %w", sub, err)
	}
	return p, nil
}
