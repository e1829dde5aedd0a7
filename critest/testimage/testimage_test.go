package testimage

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func buildOrSkip(t *testing.T) v1.Image {
	t.Helper()
	img, err := Build("")
	if errors.Is(err, ErrNoBusybox) {
		t.Skipf("%v (hack/install-deps.sh installs busybox-static)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBuildMissingBusybox(t *testing.T) {
	_, err := Build(filepath.Join(t.TempDir(), "no-busybox"))
	if !errors.Is(err, ErrNoBusybox) {
		t.Fatalf("Build of a missing binary: got %v, want ErrNoBusybox", err)
	}
}

func TestBuildLayout(t *testing.T) {
	img := buildOrSkip(t)

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd = %q, want [sh]", cfg.Config.Cmd)
	}
	if !slices.Equal(cfg.Config.Env, Env) {
		t.Errorf("Env = %q, want %q", cfg.Config.Env, Env)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" {
		t.Errorf("platform = %s/%s, want linux/<arch>", cfg.OS, cfg.Architecture)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}

	tests := []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755},
		{name: "bin/sh", typ: tar.TypeLink, mode: 0o755, linkname: "bin/busybox"},
		{name: "bin/sleep", typ: tar.TypeLink, mode: 0o755, linkname: "bin/busybox"},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
	}
	for _, tt := range tests {
		h, ok := entries[tt.name]
		if !ok {
			t.Errorf("%s: missing from layer", tt.name)
			continue
		}
		if h.Typeflag != tt.typ || h.Mode != tt.mode || h.Linkname != tt.linkname {
			t.Errorf("%s: type %c mode %o link %q, want type %c mode %o link %q",
				tt.name, h.Typeflag, h.Mode, h.Linkname, tt.typ, tt.mode, tt.linkname)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	a := buildOrSkip(t)
	b := buildOrSkip(t)
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Errorf("two builds differ: %s != %s", da, db)
	}
}

func TestServe(t *testing.T) {
	img := buildOrSkip(t)
	reg, err := Serve(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})

	for _, s := range []string{reg.Ref, reg.DigestRef()} {
		ref, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatalf("get %s: %v", s, err)
		}
		if desc.Digest != reg.Digest {
			t.Errorf("%s: digest %s, want %s", s, desc.Digest, reg.Digest)
		}
	}
}
