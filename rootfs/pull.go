package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	bolt "go.etcd.io/bbolt"
)

// Pull fetches ref (a tag or digest reference, normalised like
// NormalizeReference) for the store's platform, unpacks its layers and
// records the image. Pulling an image that is already present only adds
// the tag or digest. A pull that fails or is cancelled through ctx leaves
// no visible image.
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	r, err := parseReference(ref)
	if err != nil {
		return Image{}, err
	}
	img, err := s.pull(ctx, r, auth)
	if err != nil {
		return Image{}, fmt.Errorf("pull %q: %w", canonical(r), err)
	}
	return img, nil
}

func (s *Store) pull(ctx context.Context, r name.Reference, auth *Auth) (Image, error) {
	if s.isClosed() {
		return Image{}, ErrClosed
	}
	// Re-parse with the scheme policy attached (ggcr decides http vs https
	// from the reference).
	r, err := name.ParseReference(r.String(), s.nameOptions(r.String())...)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth.authenticator()),
		remote.WithTransport(s.transport),
		remote.WithPlatform(s.platform),
		remote.WithUserAgent("cubby"),
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return Image{}, registryError(err)
	}
	if got := digestOf(desc.Manifest); got != desc.Digest.String() {
		return Image{}, fmt.Errorf("%w: manifest is %s, registry said %s", ErrDigestMismatch, got, desc.Digest)
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return Image{}, fmt.Errorf("%w: manifest is %s", ErrDigestMismatch, desc.Digest)
	}

	image, err := desc.Image()
	if err != nil {
		return Image{}, fmt.Errorf("resolve image for %s: %w", platformString(s.platform), registryError(err))
	}
	rawManifest, err := image.RawManifest()
	if err != nil {
		return Image{}, registryError(err)
	}
	manifestDigest := digestOf(rawManifest)
	if err := checkResolved(desc, manifestDigest); err != nil {
		return Image{}, err
	}
	manifest, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return Image{}, fmt.Errorf("parse manifest %s: %w", manifestDigest, err)
	}
	rawConfig, err := image.RawConfigFile()
	if err != nil {
		return Image{}, registryError(err)
	}
	id := digestOf(rawConfig)
	if id != manifest.Config.Digest.String() {
		return Image{}, fmt.Errorf("%w: config is %s, manifest says %s", ErrDigestMismatch, id, manifest.Config.Digest)
	}
	config, cf, err := parseImageConfig(rawConfig)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w", id, err)
	}
	diffIDs := cf.RootFS.DiffIDs
	if len(diffIDs) != len(manifest.Layers) {
		return Image{}, fmt.Errorf("image %q: %d layers in manifest, %d diff IDs in config", id, len(manifest.Layers), len(diffIDs))
	}

	chains := chainIDs(diffIDs)
	release := s.lease(chains)
	defer release()

	var size int64
	for i, ld := range manifest.Layers {
		size += ld.Size
		if s.hasLayer(chains[i]) {
			continue
		}
		layer, err := image.LayerByDigest(ld.Digest)
		if err != nil {
			return Image{}, fmt.Errorf("layer %q: %w", ld.Digest, err)
		}
		if err := s.unpackLayer(ctx, layer, ld, diffIDs[i], chains[i]); err != nil {
			return Image{}, registryError(err)
		}
	}

	rec := &imageRecord{
		ID:             id,
		Size:           size,
		ManifestDigest: manifestDigest,
		Layers:         chains,
		config:         config,
	}
	var tag string
	if t, ok := r.(name.Tag); ok {
		tag = canonical(t)
	}
	repoDigest := repoName(r.Context()) + "@" + desc.Digest.String()
	return s.commitImage(rec, tag, repoDigest, rawManifest, rawConfig)
}

// checkResolved verifies that the platform manifest go-containerregistry
// picked is the top-level manifest or one listed in the verified index.
func checkResolved(desc *remote.Descriptor, manifestDigest string) error {
	if !desc.MediaType.IsIndex() {
		if manifestDigest != desc.Digest.String() {
			return fmt.Errorf("%w: manifest is %s, expected %s", ErrDigestMismatch, manifestDigest, desc.Digest)
		}
		return nil
	}
	index, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return fmt.Errorf("parse index %s: %w", desc.Digest, err)
	}
	for _, m := range index.Manifests {
		if m.Digest.String() == manifestDigest {
			return nil
		}
	}
	return fmt.Errorf("%w: manifest %s is not in index %s", ErrDigestMismatch, manifestDigest, desc.Digest)
}

// commitImage records rec under tag and repoDigest, moving the tag away
// from any other image, in one transaction.
func (s *Store) commitImage(rec *imageRecord, tag, repoDigest string, rawManifest, rawConfig []byte) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Image{}, ErrClosed
	}
	for _, c := range rec.Layers {
		if _, ok := s.layers[c]; !ok {
			return Image{}, fmt.Errorf("commit image %q: layer %q missing", rec.ID, c)
		}
	}
	if old, ok := s.images[rec.ID]; ok {
		cfg := rec.config
		rec = old.clone()
		rec.config = cfg
	}
	changed := map[string]*imageRecord{rec.ID: rec}
	claim := func(ref string, index map[string]string, field func(*imageRecord) *[]string) {
		if ref == "" || slices.Contains(*field(rec), ref) {
			return
		}
		if prev, ok := index[ref]; ok && prev != rec.ID {
			p := s.images[prev].clone()
			refs := field(p)
			*refs = slices.DeleteFunc(*refs, func(x string) bool { return x == ref })
			changed[prev] = p
		}
		*field(rec) = append(*field(rec), ref)
	}
	claim(tag, s.tags, func(r *imageRecord) *[]string { return &r.RepoTags })
	claim(repoDigest, s.digests, func(r *imageRecord) *[]string { return &r.RepoDigests })

	err := s.db.Update(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		if err := blobs.Put([]byte(rec.ID), rawConfig); err != nil {
			return err
		}
		// An image already present keeps the manifest it was first
		// pulled with; only that one is stored.
		if digestOf(rawManifest) == rec.ManifestDigest {
			if err := blobs.Put([]byte(rec.ManifestDigest), rawManifest); err != nil {
				return err
			}
		}
		for id, r := range changed {
			if err := putJSON(tx, bucketImages, id, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("commit image %q: %w", rec.ID, err)
	}
	for id, r := range changed {
		if prev, ok := s.images[id]; ok {
			s.unindex(prev)
		}
		s.index(r)
	}
	return rec.image(), nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// registryError marks "no such manifest or blob" answers as ErrNotFound.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
