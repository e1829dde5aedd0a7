package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpack needs root: mknod, chown and trusted.* xattrs")
	}
}

// entry is one tar entry for a test layer.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	major    int64
	minor    int64
	xattrs   map[string]string
}

func buildTar(t testing.TB, entries []entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1_600_000_000, 0)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode,
			Uid: e.uid, Gid: e.gid, Devmajor: e.major, Devminor: e.minor,
			ModTime: mtime, Format: tar.FormatPAX,
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatalf("write body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return &buf
}

// snapshotTree lists every path below dir with its type, skipping skip.
func snapshotTree(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+info.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}

// TestApplyHostile checks that no entry of a hostile layer reaches outside
// the layer directory, whether Apply fails or succeeds.
func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		entries func(outer string) []entry
	}{
		{"dotdot file", func(string) []entry {
			return []entry{{name: "../../victim", typ: tar.TypeReg, body: "pwned"}}
		}},
		{"absolute file", func(outer string) []entry {
			return []entry{{name: filepath.Join(outer, "victim"), typ: tar.TypeReg, body: "pwned"}}
		}},
		{"write through relative symlink", func(string) []entry {
			return []entry{
				{name: "esc", typ: tar.TypeSymlink, link: "../.."},
				{name: "esc/victim", typ: tar.TypeReg, body: "pwned"},
			}
		}},
		{"write through absolute symlink", func(outer string) []entry {
			return []entry{
				{name: "esc", typ: tar.TypeSymlink, link: outer},
				{name: "esc/victim", typ: tar.TypeReg, body: "pwned"},
				{name: "esc/newdir", typ: tar.TypeDir, mode: 0o777},
			}
		}},
		{"replace symlink to file", func(outer string) []entry {
			return []entry{
				{name: "v", typ: tar.TypeSymlink, link: filepath.Join(outer, "victim")},
				{name: "v", typ: tar.TypeReg, body: "pwned", mode: 0o777},
			}
		}},
		{"chmod through symlink dir entry", func(outer string) []entry {
			return []entry{
				{name: "v", typ: tar.TypeSymlink, link: filepath.Join(outer, "victim")},
				{name: "v", typ: tar.TypeDir, mode: 0o777},
			}
		}},
		{"hardlink dotdot", func(string) []entry {
			return []entry{{name: "hl", typ: tar.TypeLink, link: "../victim"}}
		}},
		{"hardlink absolute", func(outer string) []entry {
			return []entry{{name: "hl", typ: tar.TypeLink, link: filepath.Join(outer, "victim")}}
		}},
		{"hardlink through symlink", func(outer string) []entry {
			return []entry{
				{name: "esc", typ: tar.TypeSymlink, link: outer},
				{name: "hl", typ: tar.TypeLink, link: "esc/victim"},
			}
		}},
		{"whiteout through symlink", func(outer string) []entry {
			return []entry{
				{name: "esc", typ: tar.TypeSymlink, link: outer},
				{name: "esc/.wh.victim", typ: tar.TypeReg},
				{name: "esc/.wh..wh..opq", typ: tar.TypeReg},
			}
		}},
		{"forged overlay xattr", func(string) []entry {
			return []entry{{name: "d", typ: tar.TypeDir, mode: 0o755, xattrs: map[string]string{"trusted.overlay.redirect": "/etc"}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := t.TempDir()
			victim := filepath.Join(outer, "victim")
			if err := os.WriteFile(victim, []byte("safe"), 0o600); err != nil {
				t.Fatal(err)
			}
			layer := filepath.Join(outer, "layer")
			if err := os.Mkdir(layer, 0o755); err != nil {
				t.Fatal(err)
			}
			before := snapshotTree(t, outer, layer)

			err := Apply(context.Background(), layer, buildTar(t, tt.entries(outer)))
			t.Logf("Apply: %v", err)

			if after := snapshotTree(t, outer, layer); !equal(before, after) {
				t.Errorf("tree outside the layer changed:\nbefore %v\nafter  %v", before, after)
			}
			data, rerr := os.ReadFile(victim)
			if rerr != nil || string(data) != "safe" {
				t.Errorf("victim = %q, %v; want %q", data, rerr, "safe")
			}
			var st unix.Stat_t
			if err := unix.Stat(victim, &st); err != nil || st.Nlink != 1 || st.Mode&0o7777 != 0o600 {
				t.Errorf("victim stat nlink=%d mode=%o err=%v", st.Nlink, st.Mode&0o7777, err)
			}
			if _, err := unix.Lgetxattr(filepath.Join(layer, "d"), "trusted.overlay.redirect", make([]byte, 64)); err == nil {
				t.Errorf("trusted.overlay.redirect was set from the layer")
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestApplyEntries(t *testing.T) {
	requireRoot(t)
	layer := t.TempDir()
	err := Apply(context.Background(), layer, buildTar(t, []entry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o750, uid: 7, gid: 8},
		{name: "etc/passwd", typ: tar.TypeReg, body: "root:x:0:0", mode: 0o4755, uid: 1000, gid: 1000,
			xattrs: map[string]string{"user.note": "hi"}},
		{name: "etc/hard", typ: tar.TypeLink, link: "/etc/passwd"},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
		{name: "gone/.wh.old", typ: tar.TypeReg},
		{name: "opaque/.wh..wh..opq", typ: tar.TypeReg},
		{name: "opaque/kept", typ: tar.TypeReg, body: "k"},
		{name: "replaced", typ: tar.TypeDir},
		{name: "replaced/child", typ: tar.TypeReg},
		{name: "replaced", typ: tar.TypeReg, body: "now a file"},
	}))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}

	stat := func(rel string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(layer, rel), &st); err != nil {
			t.Fatalf("lstat %s: %v", rel, err)
		}
		return st
	}
	check := func(rel string, typ, perm uint32, uid, gid uint32) {
		t.Helper()
		st := stat(rel)
		if st.Mode&unix.S_IFMT != typ || (perm != 0 && st.Mode&0o7777 != perm) || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode=%o uid=%d gid=%d; want type %o perm %o uid %d gid %d", rel, st.Mode, st.Uid, st.Gid, typ, perm, uid, gid)
		}
	}
	check("etc", unix.S_IFDIR, 0o750, 7, 8)
	check("etc/passwd", unix.S_IFREG, 0o4755, 1000, 1000)
	check("bin/sh", unix.S_IFLNK, 0, 0, 0)
	check("dev/null", unix.S_IFCHR, 0o666, 0, 0)
	check("run/fifo", unix.S_IFIFO, 0o620, 0, 0)
	check("gone/old", unix.S_IFCHR, 0, 0, 0)
	check("replaced", unix.S_IFREG, 0o644, 0, 0)

	if st := stat("dev/null"); st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null rdev = %d", st.Rdev)
	}
	if st := stat("gone/old"); st.Rdev != 0 {
		t.Errorf("whiteout rdev = %d; want 0", st.Rdev)
	}
	if a, b := stat("etc/passwd"), stat("etc/hard"); a.Ino != b.Ino {
		t.Errorf("etc/hard is not a hard link of etc/passwd")
	}
	if st := stat("etc"); st.Mtim.Sec != 1_600_000_000 {
		t.Errorf("etc mtime = %d; want 1600000000", st.Mtim.Sec)
	}
	if target, err := os.Readlink(filepath.Join(layer, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(layer, "opaque"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr = %q, %v", buf[:n], err)
	}
	if n, err := unix.Getxattr(filepath.Join(layer, "etc/passwd"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
		t.Errorf("user.note xattr = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(layer, "gone/.wh.old")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whiteout marker file kept: %v", err)
	}
}

func TestApplyCancelled(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Apply(ctx, t.TempDir(), buildTar(t, []entry{{name: "a", typ: tar.TypeReg}}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with cancelled ctx = %v; want context.Canceled", err)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a/b":         "a/b",
		"./a/b/":      "a/b",
		"/abs/x":      "abs/x",
		"../../x":     "x",
		"a/../../b":   "b",
		"./":          "",
		"/":           "",
		"a//b/./c/..": "a/b",
	} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q; want %q", in, got, want)
		}
	}
}
