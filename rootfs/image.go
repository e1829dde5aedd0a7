package rootfs

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is one image in the store, as returned to callers (a copy).
type Image struct {
	// ID is "sha256:<hex>" of the image config blob: the one identity of
	// an image, whatever names it was pulled by.
	ID string
	// RepoTags are normalised tag references, e.g.
	// "docker.io/library/busybox:latest".
	RepoTags []string
	// RepoDigests are normalised digest references: the digest the image
	// was resolved from (a manifest list's digest for multi-platform images).
	RepoDigests []string
	// Size is the sum of the compressed layer sizes from the manifest: the
	// bytes a pull transfers (what kubelet's image accounting expects).
	Size int64
	// Config is the part of the image config that a container runtime uses.
	Config ImageConfig
}

// ImageConfig is the runtime-relevant part of an OCI image config.
type ImageConfig struct {
	User       string
	Env        []string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	Labels     map[string]string
	StopSignal string
	// Volumes are the container paths declared as volumes, sorted.
	Volumes []string
}

// imageRecord is an image as persisted in meta.db.
type imageRecord struct {
	ID             string   `json:"id"`
	RepoTags       []string `json:"repoTags,omitempty"`
	RepoDigests    []string `json:"repoDigests,omitempty"`
	Size           int64    `json:"size"`
	ManifestDigest string   `json:"manifestDigest"`
	// Layers are chain IDs, bottom layer first.
	Layers []string `json:"layers"`

	config ImageConfig // parsed from the config blob; not persisted here
}

func (r *imageRecord) clone() *imageRecord {
	c := *r
	c.RepoTags = slices.Clone(r.RepoTags)
	c.RepoDigests = slices.Clone(r.RepoDigests)
	c.Layers = slices.Clone(r.Layers)
	return &c
}

func (r *imageRecord) image() Image {
	cfg := r.config
	cfg.Env = slices.Clone(cfg.Env)
	cfg.Entrypoint = slices.Clone(cfg.Entrypoint)
	cfg.Cmd = slices.Clone(cfg.Cmd)
	cfg.Volumes = slices.Clone(cfg.Volumes)
	cfg.Labels = maps.Clone(cfg.Labels)
	return Image{
		ID:          r.ID,
		RepoTags:    slices.Clone(r.RepoTags),
		RepoDigests: slices.Clone(r.RepoDigests),
		Size:        r.Size,
		Config:      cfg,
	}
}

// parseImageConfig extracts the runtime config from a raw config blob.
func parseImageConfig(raw []byte) (ImageConfig, *v1.ConfigFile, error) {
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return ImageConfig{}, nil, fmt.Errorf("parse image config: %w", err)
	}
	c := cf.Config
	volumes := make([]string, 0, len(c.Volumes))
	for v := range c.Volumes {
		volumes = append(volumes, v)
	}
	sort.Strings(volumes)
	return ImageConfig{
		User:       c.User,
		Env:        c.Env,
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		WorkingDir: c.WorkingDir,
		Labels:     c.Labels,
		StopSignal: c.StopSignal,
		Volumes:    volumes,
	}, &cf, nil
}
