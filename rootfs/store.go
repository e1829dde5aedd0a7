package rootfs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
)

// Config configures a Store.
type Config struct {
	// Root holds all image and snapshot state, e.g. /var/lib/cubby/images.
	// It must be an absolute path without ',', ':', '=', '\' or spaces
	// (characters overlay mount options cannot carry).
	Root string
	// InsecureRegistries are "host" or "host:port" registries reached over
	// plain HTTP (or HTTPS without certificate verification). Loopback
	// registries need not be listed.
	InsecureRegistries []string
	// Platform selects from manifest lists, "os/arch[/variant]". Default
	// "linux/amd64".
	Platform string
	// Registries configures mirrors per upstream registry host, keyed by
	// the host as references spell it ("registry.k8s.io", "docker.io").
	Registries map[string]RegistryConfig
	// NoProgressTimeout fails a registry request that receives nothing
	// for this long. 0 means DefaultNoProgressTimeout; negative disables.
	NoProgressTimeout time.Duration
	// MaxConcurrentDownloads bounds the layers of one pull fetched at
	// once. 0 means DefaultMaxConcurrentDownloads.
	MaxConcurrentDownloads int
	// Logger receives pull progress. nil discards it.
	Logger *slog.Logger
	// ProgressInterval is how often a running pull logs its progress.
	// 0 means DefaultProgressInterval.
	ProgressInterval time.Duration
	// PullObserver, when set, is told about every pull (metrics).
	PullObserver PullObserver
	// Fault, when set, is called at each named fault point (FaultLayersStored);
	// crash-consistency tests make it kill the process. nil in production.
	Fault func(point string)
}

// FaultLayersStored is the fault point of a pull whose layers are stored
// and whose image is not recorded yet.
const FaultLayersStored = "pull-image/layers"

// Store is the node's image store and snapshotter.
type Store struct {
	root     string
	platform v1.Platform
	// registries holds the mirrors and the HTTP policy; SetRegistries
	// swaps them while pulls run.
	registries    atomic.Pointer[registrySettings]
	transport     *policyTransport
	maxConcurrent int
	log           *slog.Logger
	// progressInterval and observer: Config's ProgressInterval and
	// PullObserver.
	progressInterval time.Duration
	observer         PullObserver
	fault            func(point string)
	db               *bolt.DB
	flights          flights
	usage            usageCache

	mu        sync.RWMutex
	closed    bool
	images    map[string]*imageRecord // by ID
	tags      map[string]string       // normalised tag ref -> ID
	digests   map[string]string       // normalised digest ref -> ID
	layers    map[string]layerRecord  // by chain ID
	snapshots map[string]snapshotRecord
	// leases count in-flight pulls per chain ID; GC keeps leased layers.
	leases map[string]int
}

// Open opens (creating if needed) the store at cfg.Root, reloads persisted
// images and snapshots, and removes leftovers of an interrupted run.
func Open(cfg Config) (*Store, error) {
	if !filepath.IsAbs(cfg.Root) || strings.ContainsAny(cfg.Root, ",:=\\ \t\n") {
		return nil, fmt.Errorf("%w: root %q must be absolute and free of overlay option separators", ErrInvalidArgument, cfg.Root)
	}
	if cfg.Platform == "" {
		cfg.Platform = "linux/amd64"
	}
	platform, err := v1.ParsePlatform(cfg.Platform)
	if err != nil {
		return nil, fmt.Errorf("%w: platform %q: %v", ErrInvalidArgument, cfg.Platform, err)
	}
	settings, err := newRegistrySettings(cfg.InsecureRegistries, cfg.Registries)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.NoProgressTimeout == 0:
		cfg.NoProgressTimeout = DefaultNoProgressTimeout
	case cfg.NoProgressTimeout < 0:
		cfg.NoProgressTimeout = 0
	}
	if cfg.MaxConcurrentDownloads <= 0 {
		cfg.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	root := filepath.Clean(cfg.Root)
	s := &Store{
		root:             root,
		platform:         *platform,
		maxConcurrent:    cfg.MaxConcurrentDownloads,
		log:              cfg.Logger,
		progressInterval: cfg.ProgressInterval,
		observer:         cfg.PullObserver,
		fault:            cfg.Fault,
		images:           map[string]*imageRecord{},
		tags:             map[string]string{},
		digests:          map[string]string{},
		layers:           map[string]layerRecord{},
		snapshots:        map[string]snapshotRecord{},
		leases:           map[string]int{},
	}
	s.registries.Store(settings)
	s.transport = newPolicyTransport(func() hostPolicy { return s.registries.Load().policy }, cfg.NoProgressTimeout)

	for _, dir := range []string{root, s.path("layers"), s.path("l"), s.path("snapshots"), s.path("empty")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %q: %w", dir, err)
		}
	}
	if err := os.RemoveAll(s.path("tmp")); err != nil {
		return nil, fmt.Errorf("clean %q: %w", s.path("tmp"), err)
	}
	if err := os.Mkdir(s.path("tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("create %q: %w", s.path("tmp"), err)
	}

	s.db, err = bolt.Open(s.path("meta.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", s.path("meta.db"), err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.load()
	}
	if err == nil {
		err = s.reconcile()
	}
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open image store %q: %w", root, err)
	}
	return s, nil
}

// Close releases the database. Mounted snapshots stay mounted.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) layerDir(chainID string) string {
	return s.path("layers", strings.TrimPrefix(chainID, "sha256:"))
}

func (s *Store) snapshotDir(id string) string { return s.path("snapshots", id) }

// index adds r to the in-memory indexes. Callers hold s.mu (or are Open).
func (s *Store) index(r *imageRecord) {
	s.images[r.ID] = r
	for _, t := range r.RepoTags {
		s.tags[t] = r.ID
	}
	for _, d := range r.RepoDigests {
		s.digests[d] = r.ID
	}
}

// unindex removes r from the in-memory indexes. Callers hold s.mu.
func (s *Store) unindex(r *imageRecord) {
	delete(s.images, r.ID)
	for _, t := range r.RepoTags {
		if s.tags[t] == r.ID {
			delete(s.tags, t)
		}
	}
	for _, d := range r.RepoDigests {
		if s.digests[d] == r.ID {
			delete(s.digests, d)
		}
	}
}

// reconcile makes the directories agree with meta.db after a crash: layer
// and snapshot directories and links without a record go, missing links
// come back, and layers no longer referenced are collected.
func (s *Store) reconcile() error {
	entries, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := s.layers["sha256:"+e.Name()]; !ok {
			if err := os.RemoveAll(s.path("layers", e.Name())); err != nil {
				return fmt.Errorf("remove orphan layer %q: %w", e.Name(), err)
			}
		}
	}
	links, err := os.ReadDir(s.path("l"))
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range s.layers {
		known[r.Link] = true
	}
	for _, e := range links {
		if !known[e.Name()] {
			if err := os.Remove(s.path("l", e.Name())); err != nil {
				return fmt.Errorf("remove orphan link %q: %w", e.Name(), err)
			}
		}
	}
	snaps, err := os.ReadDir(s.path("snapshots"))
	if err != nil {
		return err
	}
	for _, e := range snaps {
		if _, ok := s.snapshots[e.Name()]; !ok {
			if err := os.RemoveAll(s.path("snapshots", e.Name())); err != nil {
				return fmt.Errorf("remove orphan snapshot %q: %w", e.Name(), err)
			}
		}
	}
	for _, r := range s.layers {
		if err := s.ensureLink(r); err != nil {
			return err
		}
	}
	s.mu.Lock()
	trash, err := s.gcLocked()
	s.mu.Unlock()
	s.removeTrash(trash)
	return err
}

// ensureLink creates Root/l/<link> -> ../layers/<hex> if it is missing.
func (s *Store) ensureLink(r layerRecord) error {
	target := filepath.Join("..", "layers", strings.TrimPrefix(r.ChainID, "sha256:"))
	err := os.Symlink(target, s.path("l", r.Link))
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("link layer %q: %w", r.ChainID, err)
	}
	return nil
}
