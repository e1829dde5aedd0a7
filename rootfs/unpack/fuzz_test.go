package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary tar streams to Apply inside a directory with a
// canary beside the layer: whatever the stream says, nothing may be
// created, changed or removed outside the layer directory.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("unpack needs root: mknod, chown and trusted.* xattrs")
	}
	for _, entries := range [][]entry{
		{{name: "etc/", typ: tar.TypeDir}, {name: "etc/passwd", typ: tar.TypeReg, body: "root:x:0:0"}},
		{{name: "../../victim", typ: tar.TypeReg, body: "pwned"}},
		{{name: "/abs/victim", typ: tar.TypeReg, body: "pwned"}},
		{{name: "esc", typ: tar.TypeSymlink, link: "../.."}, {name: "esc/victim", typ: tar.TypeReg, body: "pwned"}},
		{{name: "esc", typ: tar.TypeSymlink, link: "/"}, {name: "esc/.wh.canary", typ: tar.TypeReg}},
		{{name: "hl", typ: tar.TypeLink, link: "../canary"}},
		{{name: "dev/x", typ: tar.TypeChar, major: 1, minor: 3}, {name: "fifo", typ: tar.TypeFifo}},
		{{name: "d/.wh..wh..opq", typ: tar.TypeReg}, {name: "d/f", typ: tar.TypeReg, body: "x"}},
		// A chain of symlinks out, a hardlink through a symlink, a
		// directory replaced by a symlink before a write under it, and
		// whiteouts that name the parent.
		{{name: "a", typ: tar.TypeSymlink, link: "b"}, {name: "b", typ: tar.TypeSymlink, link: "../"}, {name: "a/victim", typ: tar.TypeReg, body: "pwned"}},
		{{name: "d", typ: tar.TypeSymlink, link: ".."}, {name: "hl", typ: tar.TypeLink, link: "d/canary"}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d", typ: tar.TypeSymlink, link: "/"}, {name: "d/victim", typ: tar.TypeReg, body: "pwned"}},
		{{name: ".wh...", typ: tar.TypeReg}, {name: "../.wh.canary", typ: tar.TypeReg}},
	} {
		f.Add(buildTar(f, entries).Bytes())
	}
	f.Add([]byte("not a tar at all"))

	f.Fuzz(func(t *testing.T, layer []byte) {
		outer := t.TempDir()
		canary := filepath.Join(outer, "canary")
		if err := os.WriteFile(canary, []byte("canary"), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(outer, "layer")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = Apply(context.Background(), dir, bytes.NewReader(layer)) // errors are fine, escapes are not

		entries, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("outside the layer dir: %q, want only canary and layer", names)
		}
		if b, err := os.ReadFile(canary); err != nil || string(b) != "canary" {
			t.Fatalf("canary beside the layer changed: %q, %v", b, err)
		}
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
			t.Fatalf("layer dir replaced: %v, %v", fi, err)
		}
	})
}
