package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReference checks that any string either fails to parse as an image
// reference or parses to a canonical name that parses back to itself.
func FuzzReference(f *testing.F) {
	for _, s := range []string{
		"busybox", "busybox:latest", "docker.io/library/busybox", "index.docker.io/x/y:1",
		"registry.k8s.io/pause:3.9", "127.0.0.1:5000/a/b@sha256:" + strings.Repeat("a", 64),
		"localhost/x:y", "UPPER/case", "a//b", "../x", "x:" + strings.Repeat("t", 200), " busybox", "a\x00b", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		r, err := parseReference(ref)
		if err != nil {
			return
		}
		c := canonical(r)
		r2, err := parseReference(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, ref, err)
		}
		if c2 := canonical(r2); c2 != c {
			t.Fatalf("canonical of %q is %q, of that %q", ref, c, c2)
		}
	})
}

// FuzzImageConfig checks that any config blob is parsed or refused, never
// a panic.
func FuzzImageConfig(f *testing.F) {
	f.Add([]byte(`{"config":{"User":"1000:1000","Env":["A=b"],"Cmd":["sh"],"Volumes":{"/data":{}},"StopSignal":"SIGQUIT"}}`))
	f.Add([]byte(`{"config":null}`))
	f.Add([]byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _, _ = parseImageConfig(raw)
	})
}

// FuzzImport feeds arbitrary archives to Import: a refused archive leaves
// no image behind, and nothing is written outside the store's root.
func FuzzImport(f *testing.F) {
	f.Add([]byte("not a tar"))
	f.Add(tarBytes(f, map[string]string{"manifest.json": `[{"Config":"../../../etc/passwd","RepoTags":["x:y"],"Layers":["/etc/shadow"]}]`}))
	f.Add(tarBytes(f, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"manifests":[{"digest":"sha256:../../x","mediaType":"application/vnd.oci.image.manifest.v1+json"}]}`}))
	f.Add(tarBytes(f, map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`, "c.json": `{"rootfs":{"diff_ids":[]}}`}))

	outer := f.TempDir()
	root := filepath.Join(outer, "root")
	s, err := Open(Config{Root: root})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, archive []byte) {
		imgs, err := s.Import(context.Background(), bytes.NewReader(archive))
		if err != nil && len(imgs) != 0 {
			t.Fatalf("failed import returned %d images", len(imgs))
		}
		for _, img := range imgs {
			_ = s.Remove(img.ID)
		}
		entries, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "root" {
			t.Fatalf("import wrote beside the store root: %v", entries)
		}
	})
}

func tarBytes(f *testing.F, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}
