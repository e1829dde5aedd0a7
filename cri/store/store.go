// Package store persists cubbyd's pod and container records in one bbolt
// database under --root. Every write is one transaction, so a crash leaves
// either the old or the new record. Records are versioned JSON; transient
// intent (an RPC in flight) is never stored here.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

const schemaVersion = 1

var (
	podsBucket       = []byte("pods")
	containersBucket = []byte("containers")
)

// ErrNotFound is returned for a record that is not stored.
var ErrNotFound = errors.New("record not found")

// DB is the metadata database.
type DB struct {
	db *bolt.DB
}

// Open opens (creating if needed) the database file at path.
func Open(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{podsBucket, containersBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init metadata %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Ping answers when the database serves a read: the health check's probe.
func (d *DB) Ping() error {
	err := d.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(podsBucket) == nil {
			return errors.New("pods bucket missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

type envelope struct {
	Version int             `json:"version"`
	Record  json.RawMessage `json:"record"`
}

func put(d *DB, bucket []byte, id string, v any) error {
	rec, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(envelope{Version: schemaVersion, Record: rec})
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(id), b)
	})
}

func del(d *DB, bucket []byte, id string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(id))
	})
}

func list[T any](d *DB, bucket []byte) ([]T, error) {
	var out []T
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var env envelope
			if err := json.Unmarshal(v, &env); err != nil {
				return fmt.Errorf("decode record %q: %w", k, err)
			}
			if env.Version != schemaVersion {
				return fmt.Errorf("record %q has schema version %d, want %d", k, env.Version, schemaVersion)
			}
			var rec T
			if err := json.Unmarshal(env.Record, &rec); err != nil {
				return fmt.Errorf("decode record %q: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// PutPod stores p, replacing any record with its id.
func (d *DB) PutPod(p Pod) error {
	if err := put(d, podsBucket, p.ID, p); err != nil {
		return fmt.Errorf("store pod %q: %w", p.ID, err)
	}
	return nil
}

// DeletePod removes pod id's record. Idempotent.
func (d *DB) DeletePod(id string) error { return del(d, podsBucket, id) }

// Pods returns every stored pod.
func (d *DB) Pods() ([]Pod, error) { return list[Pod](d, podsBucket) }

// PutContainer stores c, replacing any record with its id.
func (d *DB) PutContainer(c Container) error {
	if err := put(d, containersBucket, c.ID, c); err != nil {
		return fmt.Errorf("store container %q: %w", c.ID, err)
	}
	return nil
}

// DeleteContainer removes container id's record. Idempotent.
func (d *DB) DeleteContainer(id string) error { return del(d, containersBucket, id) }

// Containers returns every stored container.
func (d *DB) Containers() ([]Container, error) { return list[Container](d, containersBucket) }
