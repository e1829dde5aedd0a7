package rootfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SnapshotUsage is the disk use of one container's writable layer and the
// size of the filesystem it is on.
type SnapshotUsage struct {
	FilesystemUsage
	// CapacityBytes, TotalInodes and FreeInodes describe the filesystem.
	CapacityBytes, TotalInodes, FreeInodes uint64
}

// SnapshotUsage measures container id's writable layer now (no cache: it
// is one small tree).
func (s *Store) SnapshotUsage(id string) (SnapshotUsage, error) {
	dir := s.upperDir(id)
	u, err := measure(dir, "")
	if err != nil {
		return SnapshotUsage{}, fmt.Errorf("measure writable layer of %q: %w", id, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return SnapshotUsage{}, fmt.Errorf("statfs writable layer of %q: %w", id, err)
	}
	return SnapshotUsage{
		FilesystemUsage: u,
		CapacityBytes:   st.Blocks * uint64(st.Bsize),
		TotalInodes:     st.Files,
		FreeInodes:      st.Ffree,
	}, nil
}
