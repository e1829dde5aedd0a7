package rootfs

import (
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Get returns the image that ref names: an image ID ("sha256:<hex>" or bare
// hex), a tag or digest reference (normalised), or a unique ID prefix.
func (s *Store) Get(ref string) (Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, err := s.resolveLocked(ref)
	if err != nil {
		return Image{}, err
	}
	return rec.image(), nil
}

// List returns every image, sorted by ID.
func (s *Store) List() []Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Image, 0, len(s.images))
	for _, r := range s.images {
		out = append(out, r.image())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Remove deletes the image ref names, with all its tags and digests, and
// the layers no other image or snapshot uses. Snapshots of the image keep
// working. Returns ErrNotFound if there is no such image.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	rec, err := s.resolveLocked(ref)
	if err == nil && s.closed {
		err = ErrClosed
	}
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketImages).Delete([]byte(rec.ID)); err != nil {
			return err
		}
		blobs := tx.Bucket(bucketBlobs)
		if err := blobs.Delete([]byte(rec.ID)); err != nil {
			return err
		}
		if rec.ManifestDigest == "" {
			return nil
		}
		return blobs.Delete([]byte(rec.ManifestDigest))
	})
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove image %q: %w", rec.ID, err)
	}
	s.unindex(rec)
	trash, err := s.gcLocked()
	s.mu.Unlock()
	s.removeTrash(trash)
	if err != nil {
		return fmt.Errorf("remove image %q: %w", rec.ID, err)
	}
	return nil
}

// resolveLocked finds the image for ref. Callers hold s.mu.
func (s *Store) resolveLocked(ref string) (*imageRecord, error) {
	if id, ok := parseImageID(ref); ok {
		if r, ok := s.images[id]; ok {
			return r, nil
		}
	}
	r, perr := parseReference(ref)
	if perr == nil {
		c := canonical(r)
		id, ok := s.tags[c]
		if !ok {
			id, ok = s.digests[c]
		}
		if ok {
			return s.images[id], nil
		}
	}
	if prefix := strings.TrimPrefix(ref, "sha256:"); prefix != "" && isHex(prefix) {
		var match *imageRecord
		for id, img := range s.images {
			if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), prefix) {
				if match != nil {
					return nil, fmt.Errorf("%w: image ID prefix %q is ambiguous", ErrInvalidArgument, ref)
				}
				match = img
			}
		}
		if match != nil {
			return match, nil
		}
	} else if perr != nil {
		return nil, perr
	}
	return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
