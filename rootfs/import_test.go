package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarDir packs dir into a tar stream.
func tarDir(t *testing.T, dir string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestImportDockerSave(t *testing.T) {
	requireRoot(t)
	img := testImage(t, v1.Config{Cmd: []string{"x"}}, layerOf(t, file{name: "a", body: "a"}), layerOf(t, file{name: "b", body: "b"}))
	tag, err := name.NewTag("registry.k8s.io/pause:3.9")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	got, err := s.Import(context.Background(), &buf)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(got) != 1 || got[0].ID != mustConfigName(t, img) || !slices.Equal(got[0].RepoTags, []string{"registry.k8s.io/pause:3.9"}) {
		t.Fatalf("Import = %+v", got)
	}
	if g, err := s.Get("registry.k8s.io/pause:3.9"); err != nil || g.ID != got[0].ID {
		t.Errorf("Get after import = %v, %v", g.ID, err)
	}
	if entries, _ := os.ReadDir(s.path("tmp")); len(entries) != 0 {
		t.Errorf("tmp not empty after import: %v", entries)
	}
}

func TestImportOCILayout(t *testing.T) {
	requireRoot(t)
	img := testImage(t, v1.Config{Cmd: []string{"oci"}}, layerOf(t, file{name: "o", body: "o"}))
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "quay.io/x/y:1"})); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	got, err := s.Import(context.Background(), tarDir(t, dir))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	want := "quay.io/x/y@" + mustDigest(t, img)
	if len(got) != 1 || !slices.Equal(got[0].RepoTags, []string{"quay.io/x/y:1"}) || !slices.Equal(got[0].RepoDigests, []string{want}) {
		t.Fatalf("Import = %+v", got)
	}
}

func TestImportRejectsGarbage(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, in := range []string{"not a tar", ""} {
		if _, err := s.Import(context.Background(), strings.NewReader(in)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Import(%q) = %v; want ErrInvalidArgument", in, err)
		}
	}
}
