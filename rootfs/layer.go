package rootfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"cubby/rootfs/unpack"
)

// chainIDs returns the OCI chain ID of every layer prefix:
// ChainID(L0) = DiffID(L0), ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
func chainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d.String()
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d.String()))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// hasLayer reports whether chainID is unpacked and recorded.
func (s *Store) hasLayer(chainID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.layers[chainID]
	return ok
}

// unpackLayer reads one layer blob, unpacks it into Root/tmp while
// hashing both the compressed and the uncompressed stream, and only if
// both digests match commits the directory. The caller holds a lease on
// chainID.
func (s *Store) unpackLayer(ctx context.Context, l layerSource, diffID v1.Hash, chainID string) (err error) {
	name := l.digest.String()
	if l.digest == (v1.Hash{}) {
		name = diffID.String()
	}
	tmp, err := os.MkdirTemp(s.path("tmp"), "layer-")
	if err != nil {
		return fmt.Errorf("create temp dir for layer %q: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("chmod layer dir %q: %w", tmp, err)
	}

	blob, err := l.open()
	if err != nil {
		return fmt.Errorf("fetch layer %q: %w", name, err)
	}
	defer blob.Close()

	compressed := newDigester(blob)
	plain, err := decompress(compressed)
	if err != nil {
		return fmt.Errorf("layer %q: %w", name, err)
	}
	defer plain.Close()
	uncompressed := newDigester(plain)

	if err := unpack.Apply(ctx, tmp, uncompressed); err != nil {
		return fmt.Errorf("unpack layer %q: %w", name, err)
	}
	// Tar streams end with padding the tar reader need not consume; the
	// digests cover every byte.
	if _, err := io.Copy(io.Discard, uncompressed); err != nil {
		return fmt.Errorf("read layer %q: %w", name, err)
	}
	if _, err := io.Copy(io.Discard, compressed); err != nil {
		return fmt.Errorf("read layer %q: %w", name, err)
	}
	if got := compressed.digest(); l.digest != (v1.Hash{}) && got != name {
		return fmt.Errorf("%w: layer %q has digest %s", ErrDigestMismatch, name, got)
	}
	if got := uncompressed.digest(); got != diffID.String() {
		return fmt.Errorf("%w: layer %q has diff ID %s, config says %s", ErrDigestMismatch, name, got, diffID)
	}
	if err := s.commitLayer(tmp, layerRecord{ChainID: chainID, DiffID: diffID.String()}); err != nil {
		return err
	}
	committed = true
	return nil
}

// commitLayer renames a finished unpack into Root/layers and records it.
// If another pull committed the same layer first, tmp is discarded.
func (s *Store) commitLayer(tmp string, rec layerRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.layers[rec.ChainID]; ok {
		return os.RemoveAll(tmp)
	}
	dst := s.layerDir(rec.ChainID)
	err := s.db.Update(func(tx *bolt.Tx) error {
		seq, err := tx.Bucket(bucketLayers).NextSequence()
		if err != nil {
			return err
		}
		rec.Link = strconv.FormatUint(seq, 36)
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			// A directory without a record is a leftover of a failed
			// commit in this process; Open would have removed it.
			if err = os.RemoveAll(dst); err == nil {
				err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
			}
		}
		if err != nil {
			return fmt.Errorf("rename into place: %w", err)
		}
		if err := s.ensureLink(rec); err != nil {
			return err
		}
		return putJSON(tx, bucketLayers, rec.ChainID, rec)
	})
	if err != nil {
		return fmt.Errorf("commit layer %q: %w", rec.ChainID, err)
	}
	s.layers[rec.ChainID] = rec
	s.usage.invalidate()
	return nil
}

// lease marks chainIDs as in use by a pull so GC keeps them; the returned
// function releases the lease.
func (s *Store) lease(chainIDs []string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chainIDs {
		s.leases[c]++
	}
	return func() {
		s.mu.Lock()
		for _, c := range chainIDs {
			if s.leases[c]--; s.leases[c] <= 0 {
				delete(s.leases, c)
			}
		}
		trash, _ := s.gcLocked()
		s.mu.Unlock()
		s.removeTrash(trash)
	}
}

// digester counts and hashes what is read through it.
type digester struct {
	r io.Reader
	h hash.Hash
}

func newDigester(r io.Reader) *digester {
	h := sha256.New()
	return &digester{r: io.TeeReader(r, h), h: h}
}

func (d *digester) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *digester) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress detects gzip and zstd by their magic numbers (media types lie
// more often than magic numbers) and passes anything else through as tar.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip stream: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}
