package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxArchiveJSON bounds the JSON files (manifests, configs, indexes) read
// from an archive into memory.
const maxArchiveJSON = 32 << 20

// Import loads every image of an archive into the store: a `docker save`
// tarball (manifest.json) or an OCI image layout (index.json, oci-layout)
// packed as a tar. Images keep the names the archive gives them
// (RepoTags in manifest.json; the io.containerd.image.name or a full
// org.opencontainers.image.ref.name annotation in index.json). Every blob
// is checked against its digest and every layer against its diff ID.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]Image, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	dir, err := os.MkdirTemp(s.path("tmp"), "import-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	a, err := spool(ctx, r, dir)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var imgs []Image
	switch {
	case a.has("manifest.json"):
		imgs, err = s.importDocker(ctx, a)
	case a.has("index.json"):
		imgs, err = s.importOCI(ctx, a)
	default:
		err = fmt.Errorf("%w: neither manifest.json (docker save) nor index.json (OCI layout) in the archive", ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return imgs, nil
}

// archive is a tar spooled to a directory: every regular file under a
// numbered name (entry names never become paths), and symlinks between
// entries.
type archive struct {
	files map[string]string // cleaned entry name -> spooled file
	links map[string]string // cleaned entry name -> cleaned target name
}

func spool(ctx context.Context, r io.Reader, dir string) (*archive, error) {
	a := &archive{files: map[string]string{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read archive: %v", ErrInvalidArgument, err)
		}
		entry := cleanEntry(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			p := filepath.Join(dir, strconv.Itoa(n))
			if err := writeSpool(p, tr); err != nil {
				return nil, fmt.Errorf("spool %q: %w", hdr.Name, err)
			}
			a.files[entry] = p
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(entry), target)
			}
			a.links[entry] = cleanEntry(target)
		}
	}
}

func writeSpool(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cleanEntry(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }

func (a *archive) has(entry string) bool { _, err := a.resolve(entry); return err == nil }

// resolve follows links (a few hops) to a spooled file.
func (a *archive) resolve(entry string) (string, error) {
	entry = cleanEntry(entry)
	for range 8 {
		if p, ok := a.files[entry]; ok {
			return p, nil
		}
		next, ok := a.links[entry]
		if !ok {
			break
		}
		entry = next
	}
	return "", fmt.Errorf("%w: %q not in the archive", ErrInvalidArgument, entry)
}

func (a *archive) open(entry string) (io.ReadCloser, int64, error) {
	p, err := a.resolve(entry)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// readJSON reads a small file of the archive.
func (a *archive) read(entry string) ([]byte, error) {
	f, size, err := a.open(entry)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > maxArchiveJSON {
		return nil, fmt.Errorf("%w: %q is %d bytes, more than %d", ErrInvalidArgument, entry, size, maxArchiveJSON)
	}
	return io.ReadAll(f)
}

// blob reads an OCI layout blob and checks its digest.
func (a *archive) blob(d v1.Hash) ([]byte, error) {
	raw, err := a.read(blobPath(d))
	if err != nil {
		return nil, err
	}
	if got := digestOf(raw); got != d.String() {
		return nil, fmt.Errorf("%w: blob %s has digest %s", ErrDigestMismatch, d, got)
	}
	return raw, nil
}

func blobPath(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

func (a *archive) layer(entry string, digest v1.Hash) layerSource {
	_, size, _ := a.open(entry)
	return layerSource{digest: digest, size: size, open: func() (io.ReadCloser, error) {
		f, _, err := a.open(entry)
		return f, err
	}}
}

// dockerManifest is one entry of a docker-save manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (s *Store) importDocker(ctx context.Context, a *archive) ([]Image, error) {
	raw, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: parse manifest.json: %v", ErrInvalidArgument, err)
	}
	var out []Image
	for _, e := range entries {
		rawConfig, err := a.read(e.Config)
		if err != nil {
			return nil, err
		}
		src := source{rawConfig: rawConfig}
		for _, l := range e.Layers {
			// Newer docker save writes layers as OCI blobs, whose names
			// are their digests; older ones as <id>/layer.tar.
			var digest v1.Hash
			if h, err := v1.NewHash(strings.Replace(strings.TrimPrefix(cleanEntry(l), "blobs/"), "/", ":", 1)); err == nil {
				digest = h
			}
			src.layers = append(src.layers, a.layer(l, digest))
		}
		tags := []string{""}
		if len(e.RepoTags) > 0 {
			tags = tags[:0]
			for _, t := range e.RepoTags {
				n, err := NormalizeReference(t)
				if err != nil {
					return nil, err
				}
				tags = append(tags, n)
			}
		}
		var img Image
		for _, t := range tags {
			if img, err = s.install(ctx, src, t, ""); err != nil {
				return nil, err
			}
		}
		out = append(out, img)
	}
	return out, nil
}

const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

func (s *Store) importOCI(ctx context.Context, a *archive) ([]Image, error) {
	raw, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	index, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: parse index.json: %v", ErrInvalidArgument, err)
	}
	var out []Image
	for _, top := range index.Manifests {
		desc := top
		if desc.MediaType.IsIndex() {
			if desc, err = s.pickPlatform(a, desc); err != nil {
				return nil, err
			}
		}
		if !desc.MediaType.IsImage() {
			continue
		}
		rawManifest, err := a.blob(desc.Digest)
		if err != nil {
			return nil, err
		}
		manifest, err := v1.ParseManifest(bytes.NewReader(rawManifest))
		if err != nil {
			return nil, fmt.Errorf("%w: parse manifest %s: %v", ErrInvalidArgument, desc.Digest, err)
		}
		rawConfig, err := a.blob(manifest.Config.Digest)
		if err != nil {
			return nil, err
		}
		src := source{rawConfig: rawConfig, rawManifest: rawManifest, manifestDigest: desc.Digest.String()}
		for _, l := range manifest.Layers {
			ls := a.layer(blobPath(l.Digest), l.Digest)
			ls.size = l.Size
			src.layers = append(src.layers, ls)
		}
		var tag, repoDigest string
		if r, ok := imageName(top.Annotations); ok {
			repoDigest = repoName(r.Context()) + "@" + top.Digest.String()
			if t, ok := r.(name.Tag); ok {
				tag = canonical(t)
			}
		}
		img, err := s.install(ctx, src, tag, repoDigest)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no image for %s in index.json", ErrNotFound, platformString(s.platform))
	}
	return out, nil
}

// imageName reads an image's name from its index annotations. A bare
// ref.name ("latest", "3.9") names no repository and is ignored.
func imageName(ann map[string]string) (name.Reference, bool) {
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := ann[key]
		if v == "" || !strings.Contains(v, "/") {
			continue
		}
		if r, err := parseReference(v); err == nil {
			return r, true
		}
	}
	return nil, false
}

// pickPlatform returns the manifest for the store's platform from a
// nested index.
func (s *Store) pickPlatform(a *archive, desc v1.Descriptor) (v1.Descriptor, error) {
	raw, err := a.blob(desc.Digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: parse index %s: %v", ErrInvalidArgument, desc.Digest, err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.Satisfies(s.platform) {
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no manifest for %s in index %s", ErrNotFound, platformString(s.platform), desc.Digest)
}
