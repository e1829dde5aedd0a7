package rootfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPullCompressions pulls an image whose layers are gzip, zstd and
// uncompressed, and sees every layer's file in the container's rootfs.
func TestPullCompressions(t *testing.T) {
	requireRoot(t)
	gz := layerOf(t, file{name: "gzip", body: "g"})
	zdata := tarOf(t, file{name: "zstd", body: "z"})
	zs, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(zdata)), nil
	}, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(tarOf(t, file{name: "plain", body: "p"}), types.OCIUncompressedLayer)

	reg := testRegistry(t)
	push(t, reg+"/comp:1", testImage(t, v1.Config{}, gz, zs, plain))
	s := openStore(t, t.TempDir())
	img, err := s.Pull(context.Background(), reg+"/comp:1", nil)
	if err != nil {
		t.Fatalf("pull gzip+zstd+plain image: %v", err)
	}
	if err := s.PrepareSnapshot("c1", img.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveSnapshot("c1") })
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := s.MountSnapshot("c1", target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.UnmountSnapshot(target) })
	for name, want := range map[string]string{"gzip": "g", "zstd": "z", "plain": "p"} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != want {
			t.Errorf("%s in rootfs = %q, %v; want %q", name, got, err, want)
		}
	}
}
