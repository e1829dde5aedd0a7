package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// A snapshot is one container's root filesystem:
//
//	PrepareSnapshot ──► prepared ──MountSnapshot──► mounted
//	                       ▲   │                       │
//	                       │   └──RemoveSnapshot──► gone
//	                       └──────UnmountSnapshot──────┘
//
// The record (image and layer chain IDs) is persisted before the upper and
// work directories are created, so RemoveSnapshot can always clean up. The
// mount itself is not recorded: the caller owns the target and unmounts it.

// maxMountData is the kernel's limit on the mount options string (one
// page, including the terminating NUL).
const maxMountData = 4096 - 1

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func checkContainerID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%w: container ID %q", ErrInvalidArgument, id)
	}
	return nil
}

// PrepareSnapshot creates the writable layer of containerID on top of the
// image imageID (any reference Get accepts). Preparing the same container
// with the same image again is a no-op; with another image it fails with
// ErrAlreadyExists. The image's layers stay on disk until the snapshot is
// removed, even if the image is removed first.
func (s *Store) PrepareSnapshot(containerID, imageID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	s.mu.Lock()
	err := s.recordSnapshotLocked(containerID, imageID)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("prepare snapshot %q: %w", containerID, err)
	}
	dir := s.snapshotDir(containerID)
	for _, d := range []string{dir, filepath.Join(dir, "upper"), filepath.Join(dir, "work")} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("prepare snapshot %q: %w", containerID, err)
		}
	}
	s.usage.invalidate()
	return nil
}

func (s *Store) recordSnapshotLocked(containerID, imageRef string) error {
	if s.closed {
		return ErrClosed
	}
	img, err := s.resolveLocked(imageRef)
	if err != nil {
		return err
	}
	if prev, ok := s.snapshots[containerID]; ok {
		if prev.ImageID != img.ID {
			return fmt.Errorf("%w: snapshot uses image %q", ErrAlreadyExists, prev.ImageID)
		}
		return nil
	}
	rec := snapshotRecord{ID: containerID, ImageID: img.ID, Layers: slices.Clone(img.Layers)}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketSnapshots, containerID, rec)
	})
	if err != nil {
		return err
	}
	s.snapshots[containerID] = rec
	return nil
}

// MountSnapshot mounts the overlay of containerID at target, creating
// target if needed. If that overlay is already mounted there it returns
// nil; if something else is, ErrAlreadyExists.
func (s *Store) MountSnapshot(containerID, target string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	target = filepath.Clean(target)
	s.mu.RLock()
	rec, ok := s.snapshots[containerID]
	var links []string
	for _, c := range rec.Layers {
		links = append(links, s.layers[c].Link)
	}
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("mount snapshot %q: %w", containerID, ErrNotFound)
	}
	opts, err := s.overlayOptions(containerID, links)
	if err != nil {
		return fmt.Errorf("mount snapshot %q: %w", containerID, err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount snapshot %q: %w", containerID, err)
	}
	if top, ok, err := topMount(target); err != nil {
		return fmt.Errorf("mount snapshot %q: %w", containerID, err)
	} else if ok {
		if top.FSType == "overlay" && hasOption(top.VFSOptions, "upperdir="+s.upperDir(containerID)) {
			return nil
		}
		return fmt.Errorf("mount snapshot %q: %w: %s is mounted at %q", containerID, ErrAlreadyExists, top.FSType, target)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount snapshot %q at %q: %w", containerID, target, err)
	}
	return nil
}

func (s *Store) upperDir(id string) string { return filepath.Join(s.snapshotDir(id), "upper") }

// overlayOptions builds the mount data. lowerdir lists the top layer first
// and names layers by their short links, so ~len(Root)+6 bytes per layer.
func (s *Store) overlayOptions(id string, links []string) (string, error) {
	lowers := make([]string, 0, len(links))
	for i := len(links) - 1; i >= 0; i-- {
		if links[i] == "" {
			return "", fmt.Errorf("layer %d of snapshot missing", i)
		}
		lowers = append(lowers, s.path("l", links[i]))
	}
	if len(lowers) == 0 {
		lowers = append(lowers, s.path("empty"))
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") +
		",upperdir=" + s.upperDir(id) +
		",workdir=" + filepath.Join(s.snapshotDir(id), "work")
	if len(opts) > maxMountData {
		return "", fmt.Errorf("%w: %d layers do not fit in overlay mount options (%d bytes)", ErrInvalidArgument, len(links), len(opts))
	}
	return opts, nil
}

// topMount returns the last (topmost) mount at target.
func topMount(target string) (*mountinfo.Info, bool, error) {
	mounts, err := mountsWhere(func(m *mountinfo.Info) bool { return m.Mountpoint == target })
	if err != nil || len(mounts) == 0 {
		return nil, false, err
	}
	return mounts[len(mounts)-1], true, nil
}

// UnmountSnapshot unmounts whatever is mounted at target (all stacked
// mounts). Not mounted or missing is success. A busy mount is detached
// lazily. The target directory is left in place.
func (s *Store) UnmountSnapshot(target string) error {
	target = filepath.Clean(target)
	for range 16 {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %q: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %q: still mounted after 16 unmounts", target)
}

// RemoveSnapshot deletes the writable layer of containerID and releases
// its image layers. Removing a snapshot that does not exist succeeds; one
// that is still mounted fails with ErrInUse.
func (s *Store) RemoveSnapshot(containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	mounted, err := s.isMounted(containerID)
	if err != nil {
		return fmt.Errorf("remove snapshot %q: %w", containerID, err)
	}
	if mounted {
		return fmt.Errorf("remove snapshot %q: %w: still mounted", containerID, ErrInUse)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("remove snapshot %q: %w", containerID, ErrClosed)
	}
	var trash []string
	if _, ok := s.snapshots[containerID]; ok {
		err = s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSnapshots).Delete([]byte(containerID))
		})
		if err == nil {
			delete(s.snapshots, containerID)
			trash, err = s.gcLocked()
		}
	}
	s.mu.Unlock()
	s.removeTrash(trash)
	if err != nil {
		return fmt.Errorf("remove snapshot %q: %w", containerID, err)
	}
	if err := os.RemoveAll(s.snapshotDir(containerID)); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", containerID, err)
	}
	s.usage.invalidate()
	return nil
}

// isMounted reports whether an overlay with the snapshot's upper dir is
// mounted anywhere in this mount namespace.
func (s *Store) isMounted(id string) (bool, error) {
	opt := "upperdir=" + s.upperDir(id)
	mounts, err := mountsWhere(func(m *mountinfo.Info) bool { return m.FSType == "overlay" && hasOption(m.VFSOptions, opt) })
	if err != nil {
		return false, err
	}
	return len(mounts) > 0, nil
}
