package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer added by WithFiles: a regular file with
// Data, or a symlink to Link. Path is absolute or relative to the root.
type File struct {
	Path string
	Mode int64 // permission and setuid/setgid/sticky bits
	Data []byte
	Link string
	UID  int
	GID  int
}

// WithFiles returns img with one more layer holding files, and the parent
// directories they need (0755, root). Files replace what img has at their
// paths.
func WithFiles(img v1.Image, files ...File) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		var parents []string
		for dir := path.Dir(name); dir != "." && !seen[dir]; dir = path.Dir(dir) {
			seen[dir] = true
			parents = append(parents, dir)
		}
		slices.Reverse(parents)
		for _, dir := range parents {
			if err := tw.WriteHeader(header(dir+"/", tar.TypeDir, 0o755, 0)); err != nil {
				return nil, err
			}
		}
		h := header(name, tar.TypeReg, f.Mode, int64(len(f.Data)))
		if f.Link != "" {
			h = header(name, tar.TypeSymlink, 0o777, 0)
			h.Linkname = f.Link
		}
		h.Uid, h.Gid = f.UID, f.GID
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("add %s: %w", f.Path, err)
		}
		if f.Link == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("add %s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	out, err := mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	return out, nil
}

// WithConfig returns img with its container config changed by edit.
func WithConfig(img v1.Image, edit func(*v1.Config)) (v1.Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	edit(&cfg.Config)
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	return out, nil
}
