package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

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
	progress, done := trackPull(s.log, s.progressInterval, s.observer, canonical(r))
	ctx = withProgress(ctx, progress)

	var img Image
	var err error
	var failed []string
	// One pull keeps the registry settings it started with.
	settings := s.registries.Load()
	for _, ep := range settings.hosts.endpoints(r.Context().RegistryStr()) {
		img, err = s.pullFrom(ctx, r, ep, settings.policy, auth)
		if err == nil || ctx.Err() != nil {
			break
		}
		failed = append(failed, fmt.Sprintf("%s: %v", ep, err))
	}
	if err != nil && ctx.Err() != nil {
		// Whatever the transport made of it, the caller's deadline or
		// cancellation is the cause.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	} else if err != nil && len(failed) > 1 {
		err = fmt.Errorf("%w (all endpoints failed: %s)", err, strings.Join(failed[:len(failed)-1], "; "))
	}
	done(err)
	return img, err
}

// pullFrom pulls upstream reference r from one endpoint: the upstream
// itself or a mirror. The image is recorded under r's names either way.
func (s *Store) pullFrom(ctx context.Context, r name.Reference, ep endpoint, policy hostPolicy, auth *Auth) (Image, error) {
	var nameOpts []name.Option
	if ep.plainHTTP || policy.allowsHTTP(ep.host) {
		nameOpts = append(nameOpts, name.Insecure)
	}
	fetch, err := ep.at(r, nameOpts...)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	authn := auth.authenticator()
	if ep.mirror {
		authn = (*Auth)(nil).authenticator()
	}
	// One context per attempt: a failed layer cancels its siblings.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(authn),
		remote.WithTransport(s.transport),
		remote.WithPlatform(s.platform),
		remote.WithUserAgent("cubby"),
	}
	desc, err := remote.Get(fetch, opts...)
	if err != nil {
		return Image{}, registryError(fetch, err)
	}
	if got := digestOf(desc.Manifest); got != desc.Digest.String() {
		return Image{}, fmt.Errorf("%w: manifest is %s, registry said %s", ErrDigestMismatch, got, desc.Digest)
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return Image{}, fmt.Errorf("%w: manifest is %s", ErrDigestMismatch, desc.Digest)
	}

	image, err := desc.Image()
	if err != nil {
		return Image{}, fmt.Errorf("resolve image for %s: %w", platformString(s.platform), registryError(fetch, err))
	}
	rawManifest, err := image.RawManifest()
	if err != nil {
		return Image{}, registryError(fetch, err)
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
		return Image{}, registryError(fetch, err)
	}
	if id := digestOf(rawConfig); id != manifest.Config.Digest.String() {
		return Image{}, fmt.Errorf("%w: config is %s, manifest says %s", ErrDigestMismatch, id, manifest.Config.Digest)
	}
	src := source{rawConfig: rawConfig, rawManifest: rawManifest, manifestDigest: manifestDigest}
	for _, ld := range manifest.Layers {
		src.layers = append(src.layers, layerSource{
			digest: ld.Digest,
			size:   ld.Size,
			open: func() (io.ReadCloser, error) {
				layer, err := image.LayerByDigest(ld.Digest)
				if err != nil {
					return nil, registryError(fetch, err)
				}
				rc, err := layer.Compressed()
				if err != nil {
					return nil, registryError(fetch, err)
				}
				return rc, nil
			},
		})
	}
	var tag string
	if t, ok := r.(name.Tag); ok {
		tag = canonical(t)
	}
	repoDigest := repoName(r.Context()) + "@" + desc.Digest.String()
	img, err := s.install(ctx, src, tag, repoDigest)
	if err != nil {
		return Image{}, registryError(fetch, err)
	}
	return img, nil
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

// registryError classifies a registry's answer: no such manifest or blob
// is ErrNotFound, rejected credentials ErrUnauthenticated, refused access
// ErrPermissionDenied, each naming the registry.
func registryError(r name.Reference, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrPermissionDenied) {
		return err
	}
	reg := r.Context().RegistryStr()
	switch te.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: registry %s rejected the credentials for %s: %w", ErrUnauthenticated, reg, r.Context().RepositoryStr(), err)
	case http.StatusForbidden:
		return fmt.Errorf("%w: registry %s refused access to %s: %w", ErrPermissionDenied, reg, r.Context().RepositoryStr(), err)
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
