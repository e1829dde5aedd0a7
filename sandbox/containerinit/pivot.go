package containerinit

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pivotRoot makes the root at path the container's "/" and detaches the
// host's tree from this mount namespace, using pivot_root(".", ".") so no
// directory for the old root has to exist in the image.
func pivotRoot(path string) error {
	// Handles on both roots: a path can be remounted or moved from under
	// us, an fd cannot.
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root %q: %w", path, err)
	}
	defer unix.Close(newRoot)

	// Stand in the new root: pivot_root(".", ".") is relative to the cwd.
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("chdir to new root %q: %w", path, err)
	}
	// Make "." the root of this mount namespace and mount the old root on
	// top of it, at the same place. Both are now stacked on "/".
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %q: %w", path, err)
	}
	// The kernel leaves our cwd on the old root, but does not promise to;
	// go there explicitly, through the fd, before unmounting it.
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// The old root's mounts may still be shared with the host (the
	// rootfs propagation could be "shared"): make them slaves so the
	// unmount below cannot propagate to the host.
	if err := mount("", ".", "old root", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	// Lazily detach the old root and everything under it; it lies on top
	// of the new root, so afterwards "/" is the container's root alone.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	// Leave the detached tree: from now on "/" is the only way around.
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return nil
}
