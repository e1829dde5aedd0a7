package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// usageTTL is how long a measured Usage is reused. kubelet asks every few
// seconds; walking every layer each time would cost more than the answer
// is worth. Pulls, removals and snapshot changes invalidate it at once, so
// only writes inside running containers can be this stale.
const usageTTL = 10 * time.Second

// FilesystemUsage is the space one part of the store takes on disk.
type FilesystemUsage struct {
	// Path is the directory measured; its filesystem is the one used.
	Path string
	// UsedBytes counts allocated blocks (like du), each inode once.
	UsedBytes uint64
	// Inodes counts files, directories and other entries, each once.
	Inodes uint64
	// Time is when the measurement was taken.
	Time time.Time
}

// Usage is the disk use of the store.
type Usage struct {
	// Images covers image content: unpacked layers and metadata.
	Images FilesystemUsage
	// Containers covers the containers' writable layers.
	Containers FilesystemUsage
}

type usageCache struct {
	mu    sync.Mutex
	valid bool
	u     Usage
}

func (c *usageCache) invalidate() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}

// Usage reports the bytes and inodes used by images and by container
// writable layers, measured at most usageTTL ago.
func (s *Store) Usage() (Usage, error) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if s.usage.valid && time.Since(s.usage.u.Images.Time) < usageTTL {
		return s.usage.u, nil
	}
	snapshots := s.path("snapshots")
	images, err := measure(s.root, snapshots)
	if err != nil {
		return Usage{}, fmt.Errorf("measure image store %q: %w", s.root, err)
	}
	containers, err := measure(snapshots, "")
	if err != nil {
		return Usage{}, fmt.Errorf("measure writable layers %q: %w", snapshots, err)
	}
	s.usage.u = Usage{Images: images, Containers: containers}
	s.usage.valid = true
	return s.usage.u, nil
}

// measure walks dir, skipping the subtree skip, without following
// symlinks or crossing into other filesystems (mounted container rootfs).
func measure(dir, skip string) (FilesystemUsage, error) {
	u := FilesystemUsage{Path: dir, Time: time.Now()}
	var rootDev uint64
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if p == dir {
			rootDev = st.Dev
		} else if st.Dev != rootDev {
			if d.IsDir() {
				return filepath.SkipDir // a mount point
			}
			return nil
		}
		k := inode{st.Dev, st.Ino}
		if seen[k] {
			return nil
		}
		seen[k] = true
		u.Inodes++
		u.UsedBytes += uint64(st.Blocks) * 512
		return nil
	})
	return u, err
}
