package rootfs

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Buckets of meta.db. Values are JSON records; blobs are raw bytes keyed by
// digest.
var (
	bucketImages    = []byte("images")
	bucketLayers    = []byte("layers")
	bucketSnapshots = []byte("snapshots")
	bucketBlobs     = []byte("blobs")
	allBuckets      = [][]byte{bucketImages, bucketLayers, bucketSnapshots, bucketBlobs}
)

// layerRecord is one unpacked layer.
type layerRecord struct {
	ChainID string `json:"chainID"`
	DiffID  string `json:"diffID"`
	// Link is the short name of the layer's symlink under Root/l.
	Link string `json:"link"`
}

// snapshotRecord is one container's writable layer.
type snapshotRecord struct {
	ID      string `json:"id"`
	ImageID string `json:"imageID"`
	// Layers are chain IDs, bottom layer first.
	Layers []string `json:"layers"`
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put([]byte(key), data)
}

func forEachJSON[T any](tx *bolt.Tx, bucket []byte, fn func(key string, v T) error) error {
	return tx.Bucket(bucket).ForEach(func(k, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(string(k), v)
	})
}

// load reads meta.db into the store's indexes. Called from Open only.
func (s *Store) load() error {
	return s.db.View(func(tx *bolt.Tx) error {
		err := forEachJSON(tx, bucketLayers, func(k string, r layerRecord) error {
			s.layers[k] = r
			return nil
		})
		if err != nil {
			return err
		}
		err = forEachJSON(tx, bucketSnapshots, func(k string, r snapshotRecord) error {
			s.snapshots[k] = r
			return nil
		})
		if err != nil {
			return err
		}
		return forEachJSON(tx, bucketImages, func(k string, r imageRecord) error {
			raw := tx.Bucket(bucketBlobs).Get([]byte(r.ID))
			if raw == nil {
				return fmt.Errorf("image %q: config blob missing", r.ID)
			}
			cfg, _, err := parseImageConfig(raw)
			if err != nil {
				return fmt.Errorf("image %q: %w", r.ID, err)
			}
			r.config = cfg
			s.index(&r)
			return nil
		})
	})
}
