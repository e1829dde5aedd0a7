package rootfs

import (
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// gcLocked forgets every layer that no image, snapshot or in-flight pull
// references, and moves its directory into Root/tmp. It returns the moved
// paths for removeTrash, which callers run after releasing s.mu (removing a
// big tree is slow). The records go first: a crash after that leaves only
// directories without records, which Open deletes.
func (s *Store) gcLocked() ([]string, error) {
	used := map[string]bool{}
	for _, img := range s.images {
		for _, c := range img.Layers {
			used[c] = true
		}
	}
	for _, sn := range s.snapshots {
		for _, c := range sn.Layers {
			used[c] = true
		}
	}
	for c := range s.leases {
		used[c] = true
	}
	var unused []layerRecord
	for c, r := range s.layers {
		if !used[c] {
			unused = append(unused, r)
		}
	}
	if len(unused) == 0 {
		return nil, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range unused {
			if err := tx.Bucket(bucketLayers).Delete([]byte(r.ChainID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete unused layer records: %w", err)
	}
	s.usage.invalidate()
	var trash []string
	var firstErr error
	for _, r := range unused {
		delete(s.layers, r.ChainID)
		if err := os.Remove(s.path("l", r.Link)); err != nil && !os.IsNotExist(err) && firstErr == nil {
			firstErr = fmt.Errorf("remove link of layer %q: %w", r.ChainID, err)
		}
		dst, err := os.MkdirTemp(s.path("tmp"), "trash-")
		if err == nil {
			err = os.Rename(s.layerDir(r.ChainID), dst+"/"+strings.TrimPrefix(r.ChainID, "sha256:"))
		}
		if err != nil && !os.IsNotExist(err) && firstErr == nil {
			firstErr = fmt.Errorf("move layer %q to trash: %w", r.ChainID, err)
		}
		trash = append(trash, dst)
	}
	return trash, firstErr
}

// removeTrash deletes directories handed out by gcLocked. Failures are left
// for the next Open, which wipes Root/tmp.
func (s *Store) removeTrash(paths []string) {
	for _, p := range paths {
		_ = os.RemoveAll(p)
	}
	if len(paths) > 0 {
		s.usage.invalidate()
	}
}
