package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BenchmarkPull200MB pulls and unpacks a generated image of about 200 MB
// (8 gzip layers of 25 MB of random data in 1 MB files) from a loopback
// registry into a fresh store per iteration, and reports MB/s of
// uncompressed layer data:
//
//	go test -run '^$' -bench Pull200MB -benchtime 3x ./rootfs/
func BenchmarkPull200MB(b *testing.B) {
	if !isRoot() {
		b.Skip("needs root: layer unpack uses mknod, chown and trusted.* xattrs")
	}
	const layers, filesPerLayer, fileSize = 8, 25, 1 << 20
	rng := rand.NewChaCha8([32]byte{1})
	var ls []v1.Layer
	for i := range layers {
		var raw bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&raw, gzip.BestSpeed)
		tw := tar.NewWriter(gz)
		data := make([]byte, fileSize)
		for j := range filesPerLayer {
			_, _ = rng.Read(data)
			hdr := &tar.Header{Name: "d" + string(rune('a'+i)) + "/f" + string(rune('a'+j)), Mode: 0o644, Size: fileSize, ModTime: time.Unix(1_600_000_000, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
			if _, err := tw.Write(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		if err := gz.Close(); err != nil {
			b.Fatal(err)
		}
		blob := raw.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
	}
	reg := testRegistry(b)
	push(b, reg+"/bench:200mb", testImage(b, v1.Config{}, ls...))

	b.SetBytes(layers * filesPerLayer * fileSize)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		s, err := Open(Config{Root: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Pull(context.Background(), reg+"/bench:200mb", nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
