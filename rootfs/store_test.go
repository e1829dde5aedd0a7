package rootfs

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: layer unpack uses mknod, chown and trusted.* xattrs")
	}
}

func TestPullGetListRemove(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	img := testImage(t, v1.Config{Env: []string{"A=1"}, Cmd: []string{"sh"}, WorkingDir: "/w",
		Volumes: map[string]struct{}{"/data": {}}, Labels: map[string]string{"k": "v"}},
		layerOf(t, file{name: "hello", body: "world"}))
	push(t, reg+"/test/img:v1", img)
	id := mustConfigName(t, img)
	manifestDigest := mustDigest(t, img)

	s := openStore(t, t.TempDir())
	ctx := context.Background()
	got, err := s.Pull(ctx, reg+"/test/img:v1", nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if got.ID != id {
		t.Errorf("ID = %s; want %s", got.ID, id)
	}
	wantTag := reg + "/test/img:v1"
	wantDigest := reg + "/test/img@" + manifestDigest
	if !slices.Equal(got.RepoTags, []string{wantTag}) || !slices.Equal(got.RepoDigests, []string{wantDigest}) {
		t.Errorf("refs = %v %v; want [%s] [%s]", got.RepoTags, got.RepoDigests, wantTag, wantDigest)
	}
	if got.Size <= 0 || got.Config.WorkingDir != "/w" || !slices.Equal(got.Config.Env, []string{"A=1"}) ||
		!slices.Equal(got.Config.Volumes, []string{"/data"}) || got.Config.Labels["k"] != "v" {
		t.Errorf("image = %+v", got)
	}

	// Pull by digest adds nothing new but must resolve to the same image.
	if byDigest, err := s.Pull(ctx, wantDigest, nil); err != nil || byDigest.ID != id {
		t.Fatalf("Pull by digest = %v, %v", byDigest.ID, err)
	}
	for _, ref := range []string{id, strings.TrimPrefix(id, "sha256:"), id[:19], wantTag, wantDigest} {
		if g, err := s.Get(ref); err != nil || g.ID != id {
			t.Errorf("Get(%q) = %q, %v", ref, g.ID, err)
		}
	}
	if _, err := s.Get(reg + "/test/img:other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown tag) = %v; want ErrNotFound", err)
	}
	if l := s.List(); len(l) != 1 || l[0].ID != id {
		t.Errorf("List = %+v", l)
	}

	// A second tag on another image moves when re-pushed.
	img2 := testImage(t, v1.Config{Cmd: []string{"two"}}, layerOf(t, file{name: "hello", body: "again"}))
	push(t, reg+"/test/img:v1", img2)
	if _, err := s.Pull(ctx, reg+"/test/img:v1", nil); err != nil {
		t.Fatalf("Pull moved tag: %v", err)
	}
	if old, err := s.Get(id); err != nil || len(old.RepoTags) != 0 {
		t.Errorf("old image after tag move = %+v, %v; want no tags", old, err)
	}

	for _, im := range s.List() {
		if err := s.Remove(im.ID); err != nil {
			t.Fatalf("Remove(%s): %v", im.ID, err)
		}
	}
	if err := s.Remove(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v; want ErrNotFound", err)
	}
	if _, err := s.Get(wantTag); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove = %v; want ErrNotFound", err)
	}
	if entries, _ := os.ReadDir(s.path("layers")); len(entries) != 0 {
		t.Errorf("layers left after Remove: %v", entries)
	}
	if entries, _ := os.ReadDir(s.path("l")); len(entries) != 0 {
		t.Errorf("links left after Remove: %v", entries)
	}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	amd := testImage(t, v1.Config{Cmd: []string{"amd64"}}, layerOf(t, file{name: "arch", body: "amd64"}))
	arm := testImage(t, v1.Config{Cmd: []string{"arm64"}}, layerOf(t, file{name: "arch", body: "arm64"}))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	pushIndex(t, reg+"/multi:latest", idx)

	s := openStore(t, t.TempDir())
	got, err := s.Pull(context.Background(), reg+"/multi", nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if got.ID != mustConfigName(t, amd) || !slices.Equal(got.Config.Cmd, []string{"amd64"}) {
		t.Errorf("pulled %s %v; want the amd64 image", got.ID, got.Config.Cmd)
	}
	if want := reg + "/multi@" + mustDigest(t, idx); !slices.Equal(got.RepoDigests, []string{want}) {
		t.Errorf("RepoDigests = %v; want [%s]", got.RepoDigests, want)
	}
}

func TestPullRejectsBadDiffID(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	img := testImage(t, v1.Config{}, layerOf(t, file{name: "a", body: "a"}))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	bad, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	push(t, reg+"/bad:latest", bad)

	s := openStore(t, t.TempDir())
	if _, err := s.Pull(context.Background(), reg+"/bad:latest", nil); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Pull = %v; want ErrDigestMismatch", err)
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("image visible after failed pull: %+v", l)
	}
	for _, dir := range []string{"layers", "l", "tmp"} {
		if entries, _ := os.ReadDir(s.path(dir)); len(entries) != 0 {
			t.Errorf("%s not empty after failed pull: %v", dir, entries)
		}
	}
}

func TestPullNotFoundAndCancelled(t *testing.T) {
	reg := testRegistry(t)
	s := openStore(t, t.TempDir())
	if _, err := s.Pull(context.Background(), reg+"/nope:latest", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pull missing = %v; want ErrNotFound", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Pull(ctx, reg+"/nope:latest", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Pull cancelled = %v; want context.Canceled", err)
	}
	if _, err := s.Pull(context.Background(), "Bad:Ref:x", nil); !errors.Is(err, ErrInvalidReference) {
		t.Errorf("Pull malformed = %v; want ErrInvalidReference", err)
	}
}

func TestReopenKeepsImages(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	push(t, reg+"/keep:1", testImage(t, v1.Config{User: "nobody"}, layerOf(t, file{name: "f", body: "x"})))
	root := t.TempDir()
	s, err := Open(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Pull(context.Background(), reg+"/keep:1", nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Leftovers of a crash: an unpack in progress and an unrecorded layer.
	if err := os.MkdirAll(root+"/tmp/layer-123/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(root+"/layers/"+strings.Repeat("a", 64), 0o755); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, root)
	got, err := s2.Get(reg + "/keep:1")
	if err != nil || got.ID != want.ID || got.Config.User != "nobody" {
		t.Fatalf("Get after reopen = %+v, %v", got, err)
	}
	if _, err := os.Stat(root + "/layers/" + strings.Repeat("a", 64)); !os.IsNotExist(err) {
		t.Errorf("orphan layer survived Open: %v", err)
	}
	if entries, _ := os.ReadDir(root + "/tmp"); len(entries) != 0 {
		t.Errorf("tmp not wiped: %v", entries)
	}
}

func TestNormalizeReference(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1"},
		{"user/app", "docker.io/user/app:latest"},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"},
		{"localhost/x/y:t", "localhost/x/y:t"},
		{"quay.io/a/b@" + dgst, "quay.io/a/b@" + dgst},
		{"busybox:1@" + dgst, "docker.io/library/busybox@" + dgst},
		{"", ""},
		{"UPPER/case", ""},
		{"a b", ""},
		{"x@sha256:short", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeReference(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidReference) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("NormalizeReference(%q) = %q, %v; want ErrInvalidReference", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeReference(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHostPolicy(t *testing.T) {
	p := newHostPolicy([]string{"reg.local:5000", "plain.example"}, []string{"mirror.local:5000"})
	tests := []struct {
		host string
		http bool
	}{
		{"127.0.0.1:5000", true},
		{"127.3.4.5", true},
		{"[::1]:5000", true},
		{"localhost:80", true},
		{"reg.local:5000", true},
		{"reg.local:5001", false},
		{"plain.example:443", true},
		{"10.0.0.1:5000", false},
		{"192.168.1.1", false},
		{"registry-1.docker.io", false},
		{"mirror.local:5000", true},
		{"mirror.local", false},
	}
	for _, tt := range tests {
		if got := p.allowsHTTP(tt.host); got != tt.http {
			t.Errorf("allowsHTTP(%q) = %v; want %v", tt.host, got, tt.http)
		}
	}
}

func TestConcurrentPullsShareLayers(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	shared := layerOf(t, file{name: "shared", body: "s"})
	push(t, reg+"/a:1", testImage(t, v1.Config{Cmd: []string{"a"}}, shared, layerOf(t, file{name: "a"})))
	push(t, reg+"/b:1", testImage(t, v1.Config{Cmd: []string{"b"}}, shared, layerOf(t, file{name: "b"})))

	s := openStore(t, t.TempDir())
	errs := make(chan error, 6)
	for i := range 6 {
		ref := reg + "/a:1"
		if i%2 == 1 {
			ref = reg + "/b:1"
		}
		go func() {
			_, err := s.Pull(context.Background(), ref, nil)
			errs <- err
			s.List()
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Errorf("Pull: %v", err)
		}
	}
	if l := s.List(); len(l) != 2 {
		t.Errorf("List = %d images; want 2", len(l))
	}
	// Three distinct chain IDs: the shared base and one top per image.
	if entries, _ := os.ReadDir(s.path("layers")); len(entries) != 3 {
		t.Errorf("layers = %d dirs; want 3", len(entries))
	}
	if err := s.Remove(reg + "/a:1"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(s.path("layers")); len(entries) != 2 {
		t.Errorf("after removing a: %d layer dirs; want 2 (shared one kept)", len(entries))
	}
}
