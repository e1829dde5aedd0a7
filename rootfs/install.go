package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultMaxConcurrentDownloads bounds the layers of one pull that are
// fetched and unpacked at once (containerd's default too).
const DefaultMaxConcurrentDownloads = 3

// source is an image about to be installed, wherever it comes from (a
// registry or an archive): its verified config and manifest, and a way to
// open each layer blob.
type source struct {
	rawConfig      []byte
	rawManifest    []byte // nil for docker-save archives, which have none
	manifestDigest string // "" when rawManifest is nil
	layers         []layerSource
}

// layerSource is one layer blob.
type layerSource struct {
	// digest is the blob's digest as the manifest names it; a zero digest
	// (docker-save layers) is not checked, the diff ID still is.
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

// install unpacks src's missing layers (in parallel, each chain ID once
// even across concurrent pulls) and records the image under tag and
// repoDigest (either may be empty). A failure leaves no image and, once
// the lease is released, no layer that nothing else uses.
func (s *Store) install(ctx context.Context, src source, tag, repoDigest string) (Image, error) {
	id := digestOf(src.rawConfig)
	config, cf, err := parseImageConfig(src.rawConfig)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w", id, err)
	}
	diffIDs := cf.RootFS.DiffIDs
	if len(diffIDs) != len(src.layers) {
		return Image{}, fmt.Errorf("image %q: %d layers in manifest, %d diff IDs in config", id, len(src.layers), len(diffIDs))
	}
	chains := chainIDs(diffIDs)
	release := s.lease(chains)
	defer release()

	var size int64
	for _, l := range src.layers {
		size += l.size
	}
	progressFrom(ctx).setTotals(len(src.layers), size)
	if err := s.fetchLayers(ctx, src.layers, diffIDs, chains); err != nil {
		return Image{}, fmt.Errorf("image %q: %w", id, err)
	}
	if s.fault != nil {
		s.fault(FaultLayersStored)
	}
	rec := &imageRecord{
		ID:             id,
		Size:           size,
		ManifestDigest: src.manifestDigest,
		Layers:         chains,
		config:         config,
	}
	return s.commitImage(rec, tag, repoDigest, src.rawManifest, src.rawConfig)
}

// fetchLayers fetches and unpacks the layers not yet stored, at most
// s.maxConcurrent at a time. The first failure cancels the others.
func (s *Store) fetchLayers(ctx context.Context, layers []layerSource, diffIDs []v1.Hash, chains []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.maxConcurrent)
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := s.fetchLayer(ctx, l, diffIDs[i], chains[i]); err != nil {
				errs[i] = err
				cancel()
				return
			}
			progressFrom(ctx).layerDone()
		})
	}
	wg.Wait()
	// Report the failure that cancelled the rest, not the cancellations.
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil || (errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	return first
}

// fetchLayer makes sure chainID is unpacked. If another pull is unpacking
// it already, it waits for that one instead of downloading the blob again;
// if that one fails, it tries itself.
func (s *Store) fetchLayer(ctx context.Context, l layerSource, diffID v1.Hash, chainID string) error {
	for {
		if s.hasLayer(chainID) {
			return nil
		}
		done, leader := s.flights.begin(chainID)
		if leader {
			err := s.unpackLayer(ctx, l, diffID, chainID)
			s.flights.end(chainID)
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// flights tracks the layer unpacks in progress, by chain ID.
type flights struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// begin returns the channel closed when the unpack of key ends, and
// whether the caller is the one to do it (and must call end).
func (f *flights) begin(key string) (<-chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.m[key]; ok {
		return ch, false
	}
	if f.m == nil {
		f.m = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	f.m[key] = ch
	return ch, true
}

func (f *flights) end(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.m[key])
	delete(f.m, key)
}
