package rootfs

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// serveHandler serves h on 127.0.0.1 and returns its host:port.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func newRegistryHandler() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

// deadHost returns a loopback host:port that refuses connections.
func deadHost(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	return host
}

// storeIsClean fails t if anything of a failed pull is left.
func storeIsClean(t *testing.T, s *Store) {
	t.Helper()
	if l := s.List(); len(l) != 0 {
		t.Errorf("images visible after failed pull: %+v", l)
	}
	for _, dir := range []string{"layers", "l", "tmp"} {
		if entries, _ := os.ReadDir(s.path(dir)); len(entries) != 0 {
			t.Errorf("%s not empty after failed pull: %v", dir, entries)
		}
	}
}

func TestPullMirrorReplacesUpstream(t *testing.T) {
	requireRoot(t)
	mirror := testRegistry(t)
	img := testImage(t, v1.Config{}, layerOf(t, file{name: "pause", body: "p"}))
	push(t, mirror+"/pause:3.9", img)

	s, err := Open(Config{Root: t.TempDir(), Registries: map[string]RegistryConfig{
		"registry.k8s.io": {Mirrors: []string{"http://" + mirror}, SkipUpstream: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	got, err := s.Pull(context.Background(), "registry.k8s.io/pause:3.9", nil)
	if err != nil {
		t.Fatalf("Pull through mirror: %v", err)
	}
	if !slices.Equal(got.RepoTags, []string{"registry.k8s.io/pause:3.9"}) {
		t.Errorf("RepoTags = %v; want the upstream name", got.RepoTags)
	}
	if want := "registry.k8s.io/pause@" + mustDigest(t, img); !slices.Equal(got.RepoDigests, []string{want}) {
		t.Errorf("RepoDigests = %v; want [%s]", got.RepoDigests, want)
	}
	// Not on the mirror: the upstream is never tried, the mirror's answer stands.
	if _, err := s.Pull(context.Background(), "registry.k8s.io/other:1", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pull of an image the mirror lacks = %v; want ErrNotFound", err)
	}
}

func TestPullMirrorFallsBack(t *testing.T) {
	requireRoot(t)
	upstream := testRegistry(t)
	second := testRegistry(t)
	img := testImage(t, v1.Config{}, layerOf(t, file{name: "x", body: "x"}))
	push(t, upstream+"/app:1", img)
	push(t, second+"/app:2", img)

	s, err := Open(Config{Root: t.TempDir(), Registries: map[string]RegistryConfig{
		upstream: {Mirrors: []string{"http://" + deadHost(t), "http://" + second}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// app:2 is only on the second mirror; app:1 only upstream.
	for _, tag := range []string{"2", "1"} {
		ref := upstream + "/app:" + tag
		got, err := s.Pull(context.Background(), ref, nil)
		if err != nil {
			t.Fatalf("Pull %s: %v", ref, err)
		}
		if !slices.Contains(got.RepoTags, ref) {
			t.Errorf("RepoTags = %v; want %s", got.RepoTags, ref)
		}
	}
}

func TestRegistryConfigInvalid(t *testing.T) {
	for _, rc := range []map[string]RegistryConfig{
		{"registry.k8s.io": {Mirrors: []string{"ftp://x"}}},
		{"registry.k8s.io": {Mirrors: []string{"http://x/some/path"}}},
		{"registry.k8s.io": {SkipUpstream: true}},
		{"": {Mirrors: []string{"x"}}},
	} {
		if _, err := Open(Config{Root: t.TempDir(), Registries: rc}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open(%v) = %v; want ErrInvalidArgument", rc, err)
		}
	}
}

// basicAuth wraps h so that every request needs user:pass.
func basicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestPullAuth(t *testing.T) {
	requireRoot(t)
	reg := serveHandler(t, basicAuth(newRegistryHandler(), "alice", "right"))
	s := openStore(t, t.TempDir())

	if _, err := s.Pull(context.Background(), reg+"/private:1", &Auth{Username: "alice", Password: "wrong"}); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), reg) {
		t.Errorf("Pull with a wrong password = %v; want ErrUnauthenticated naming %s", err, reg)
	}
	if _, err := s.Pull(context.Background(), reg+"/private:1", nil); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Pull without credentials = %v; want ErrUnauthenticated", err)
	}
	storeIsClean(t, s)
}

func TestPullAuthSucceeds(t *testing.T) {
	requireRoot(t)
	h := basicAuth(newRegistryHandler(), "alice", "right")
	reg := serveHandler(t, h)
	img := testImage(t, v1.Config{}, layerOf(t, file{name: "secret", body: "s"}))
	pushAuth(t, reg+"/private:1", img, "alice", "right")
	s := openStore(t, t.TempDir())
	for _, auth := range []*Auth{
		{Username: "alice", Password: "right"},
		{Auth: "YWxpY2U6cmlnaHQ="}, // base64("alice:right")
	} {
		got, err := s.Pull(context.Background(), reg+"/private:1", auth)
		if err != nil || got.ID != mustConfigName(t, img) {
			t.Errorf("Pull with %+v = %v, %v", auth, got.ID, err)
		}
	}
}

// stallingBlobs serves h but, for a GET of the blob digest, sends the
// headers and then nothing until the client goes away.
func stallingBlobs(h http.Handler, digest string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestPullNoProgressTimeout(t *testing.T) {
	requireRoot(t)
	layer := layerOf(t, file{name: "big", body: "b"})
	reg := serveHandler(t, stallingBlobs(newRegistryHandler(), mustDigest(t, layer)))
	push(t, reg+"/slow:1", testImage(t, v1.Config{}, layer))

	s, err := Open(Config{Root: t.TempDir(), NoProgressTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, err = s.Pull(context.Background(), reg+"/slow:1", nil)
	if !errors.Is(err, ErrNoProgress) {
		t.Fatalf("Pull from a stalling registry = %v; want ErrNoProgress", err)
	}
	storeIsClean(t, s)
}

func TestPullDeadline(t *testing.T) {
	reg := testRegistry(t)
	push(t, reg+"/d:1", testImage(t, v1.Config{}, layerOf(t, file{name: "d", body: "d"})))
	s := openStore(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if _, err := s.Pull(ctx, reg+"/d:1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pull with an expired deadline = %v; want DeadlineExceeded", err)
	}
	storeIsClean(t, s)
}

// countingBlobs counts GETs of each blob path.
type countingBlobs struct {
	h  http.Handler
	mu sync.Mutex
	n  map[string]int
}

func (c *countingBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		c.mu.Lock()
		c.n[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
		c.mu.Unlock()
	}
	c.h.ServeHTTP(w, r)
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	requireRoot(t)
	counter := &countingBlobs{h: newRegistryHandler(), n: map[string]int{}}
	reg := serveHandler(t, counter)
	var layers []v1.Layer
	for _, n := range []string{"a", "b", "c", "d"} {
		layers = append(layers, layerOf(t, file{name: n, body: strings.Repeat(n, 4096)}))
	}
	img := testImage(t, v1.Config{}, layers...)
	push(t, reg+"/four:1", img)
	counter.mu.Lock()
	clear(counter.n)
	counter.mu.Unlock()

	s := openStore(t, t.TempDir())
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := s.Pull(context.Background(), reg+"/four:1", nil); err != nil {
				t.Errorf("Pull: %v", err)
			}
		})
	}
	wg.Wait()
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if n := counter.n[d.String()]; n != 1 {
			t.Errorf("layer %s downloaded %d times; want 1", d, n)
		}
	}
	if entries, _ := os.ReadDir(s.path("layers")); len(entries) != 4 {
		t.Errorf("layers = %d dirs; want 4", len(entries))
	}
}

func TestUsage(t *testing.T) {
	requireRoot(t)
	reg := testRegistry(t)
	push(t, reg+"/u:1", testImage(t, v1.Config{}, layerOf(t, file{name: "f", body: strings.Repeat("x", 10000)})))
	s := openStore(t, t.TempDir())
	before, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), reg+"/u:1", nil); err != nil {
		t.Fatal(err)
	}
	after, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if after.Images.UsedBytes < before.Images.UsedBytes+10000 || after.Images.Inodes <= before.Images.Inodes {
		t.Errorf("usage after pull %+v; before %+v: want the layer counted", after.Images, before.Images)
	}
	if after.Images.Path != s.root || after.Containers.Path != s.path("snapshots") {
		t.Errorf("paths %q %q", after.Images.Path, after.Containers.Path)
	}
}

func pushAuth(t *testing.T, ref string, img v1.Image, user, pass string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// TestSetRegistriesWhilePulling swaps the mirrors while pulls run: a pull
// through a dead mirror fails, and after SetRegistries names the live one
// the same pull succeeds. An invalid setting is refused and the live one stays.
func TestSetRegistriesWhilePulling(t *testing.T) {
	mirror := testRegistry(t)
	img := testImage(t, v1.Config{}, layerOf(t, file{name: "pause", body: "p"}))
	push(t, mirror+"/pause:3.9", img)
	dead := map[string]RegistryConfig{"registry.k8s.io": {Mirrors: []string{"http://" + deadHost(t)}, SkipUpstream: true}}
	live := map[string]RegistryConfig{"registry.k8s.io": {Mirrors: []string{"http://" + mirror}, SkipUpstream: true}}

	s, err := Open(Config{Root: t.TempDir(), Registries: dead})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if _, err := s.Pull(ctx, "registry.k8s.io/pause:3.9", nil); err == nil {
		t.Fatal("Pull through a dead mirror succeeded")
	}
	// Swap back and forth under concurrent pulls (for -race).
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := dead
			if i%2 == 0 {
				cfg = live
			}
			_ = s.SetRegistries(nil, cfg)
			_, _ = s.Pull(ctx, "registry.k8s.io/pause:3.9", nil)
		}()
	}
	wg.Wait()
	if err := s.SetRegistries(nil, live); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRegistries(nil, map[string]RegistryConfig{"registry.k8s.io": {SkipUpstream: true}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetRegistries(skip_upstream without mirrors) = %v; want ErrInvalidArgument", err)
	}
	if _, err := s.Pull(ctx, "registry.k8s.io/pause:3.9", nil); err != nil {
		t.Fatalf("Pull after SetRegistries named the live mirror: %v", err)
	}
}
