package testimage

import (
	"archive/tar"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestWithFilesAndConfig(t *testing.T) {
	img := buildOrSkip(t)
	img, err := WithFiles(img,
		File{Path: "/usr/local/bin/nnp", Mode: 0o4755, Data: []byte("prog")},
		File{Path: "usr/local/bin/alias", Link: "nnp"},
	)
	if err != nil {
		t.Fatal(err)
	}
	img, err = WithConfig(img, func(c *v1.Config) { c.User = "1002" })
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1002" || cfg.Config.Cmd[0] != "sh" {
		t.Errorf("config user %q cmd %q: want the edit on top of the base config", cfg.Config.User, cfg.Config.Cmd)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d, %v; want 2", len(layers), err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		order = append(order, h.Name)
	}
	want := []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/nnp", "usr/local/bin/alias"}
	if len(order) != len(want) {
		t.Fatalf("layer entries %q, want %q (parents first, once)", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("layer entries %q, want %q", order, want)
		}
	}
	if h := got["usr/local/bin/nnp"]; h.Mode != 0o4755 || h.Typeflag != tar.TypeReg || h.Size != 4 {
		t.Errorf("nnp: mode %o type %c size %d, want setuid 4755 regular file of 4 bytes", h.Mode, h.Typeflag, h.Size)
	}
	if h := got["usr/local/bin/alias"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "nnp" {
		t.Errorf("alias: type %c -> %q, want symlink to nnp", h.Typeflag, h.Linkname)
	}
}
