package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestSnapshotOverlay(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	base := layerOf(t,
		file{name: "etc/", typ: tar.TypeDir},
		file{name: "etc/keep", body: "base"},
		file{name: "etc/gone", body: "base"},
		file{name: "opq/", typ: tar.TypeDir},
		file{name: "opq/hidden", body: "base"},
		file{name: "bin/", typ: tar.TypeDir},
		file{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"},
	)
	top := layerOf(t,
		file{name: "etc/.wh.gone"},
		file{name: "etc/keep", body: "top"},
		file{name: "opq/", typ: tar.TypeDir},
		file{name: "opq/.wh..wh..opq"},
		file{name: "opq/new", body: "top"},
	)
	push(t, reg+"/snap:1", testImage(t, v1.Config{}, base, top))

	s := openStore(t, t.TempDir())
	img, err := s.Pull(context.Background(), reg+"/snap:1", nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	const id = "c1"
	if err := s.PrepareSnapshot(id, img.ID); err != nil {
		t.Fatalf("PrepareSnapshot: %v", err)
	}
	t.Cleanup(func() { _ = s.RemoveSnapshot(id) })
	if err := s.PrepareSnapshot(id, img.ID); err != nil {
		t.Errorf("PrepareSnapshot again = %v; want nil", err)
	}
	if err := s.PrepareSnapshot("../x", img.ID); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("PrepareSnapshot(../x) = %v; want ErrInvalidArgument", err)
	}

	target := filepath.Join(t.TempDir(), "rootfs")
	if err := s.MountSnapshot(id, target); err != nil {
		t.Fatalf("MountSnapshot: %v", err)
	}
	t.Cleanup(func() { _ = s.UnmountSnapshot(target) })
	if err := s.MountSnapshot(id, target); err != nil {
		t.Errorf("MountSnapshot again = %v; want nil", err)
	}

	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(target, rel))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if got := read("etc/keep"); got != "top" {
		t.Errorf("etc/keep = %q; want top", got)
	}
	if got := read("opq/new"); got != "top" {
		t.Errorf("opq/new = %q; want top", got)
	}
	for _, gone := range []string{"etc/gone", "opq/hidden"} {
		if _, err := os.Lstat(filepath.Join(target, gone)); !os.IsNotExist(err) {
			t.Errorf("%s visible in merged view: %v", gone, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(target, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	if err := os.WriteFile(filepath.Join(target, "etc/written"), []byte("c"), 0o644); err != nil {
		t.Fatalf("write into snapshot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.upperDir(id), "etc/written")); err != nil {
		t.Errorf("write did not land in the upper dir: %v", err)
	}

	// The image can go while the snapshot uses its layers.
	if err := s.Remove(img.ID); err != nil {
		t.Fatalf("Remove image in use: %v", err)
	}
	if got := read("etc/keep"); got != "top" {
		t.Errorf("after image removal etc/keep = %q", got)
	}

	if err := s.RemoveSnapshot(id); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveSnapshot while mounted = %v; want ErrInUse", err)
	}
	if err := s.UnmountSnapshot(target); err != nil {
		t.Fatalf("UnmountSnapshot: %v", err)
	}
	if err := s.UnmountSnapshot(target); err != nil {
		t.Errorf("UnmountSnapshot again = %v; want nil", err)
	}
	if err := s.UnmountSnapshot(filepath.Join(target, "missing")); err != nil {
		t.Errorf("UnmountSnapshot(missing) = %v; want nil", err)
	}
	if err := s.RemoveSnapshot(id); err != nil {
		t.Fatalf("RemoveSnapshot: %v", err)
	}
	if err := s.RemoveSnapshot(id); err != nil {
		t.Errorf("RemoveSnapshot again = %v; want nil", err)
	}
	if err := s.MountSnapshot(id, target); !errors.Is(err, ErrNotFound) {
		t.Errorf("MountSnapshot after remove = %v; want ErrNotFound", err)
	}
	for _, dir := range []string{"snapshots", "layers", "l"} {
		if entries, _ := os.ReadDir(s.path(dir)); len(entries) != 0 {
			t.Errorf("%s not empty after removing image and snapshot: %v", dir, entries)
		}
	}
}

func TestOverlayOptionsFitPage(t *testing.T) {
	s := &Store{root: "/var/lib/cubby/images"}
	links := make([]string, 128) // the most layers Docker allows
	for i := range links {
		links[i] = strings.Repeat("z", 3)
	}
	opts, err := s.overlayOptions(strings.Repeat("f", 64), links)
	if err != nil {
		t.Fatalf("overlayOptions(128 layers) = %v", err)
	}
	if !strings.HasPrefix(opts, "lowerdir=/var/lib/cubby/images/l/zzz:") {
		t.Errorf("opts = %.60s…", opts)
	}
	many := make([]string, 200)
	for i := range many {
		many[i] = "zzz"
	}
	if _, err := s.overlayOptions("c", many); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("overlayOptions(200 layers) = %v; want ErrInvalidArgument", err)
	}
	if _, err := s.overlayOptions("c", []string{""}); err == nil {
		t.Errorf("overlayOptions accepted an unnamed layer")
	}
}
