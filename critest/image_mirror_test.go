package critest

import (
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// countingRegistry serves the test image as pause:3.9 and counts the
// requests it gets.
func countingRegistry(t *testing.T) (*testimage.Registry, *atomic.Int64) {
	t.Helper()
	ctx := framework.Context(t)
	img, err := testimage.Build(suite.Options().Busybox)
	if err != nil {
		t.Skipf("no test image: %v", err)
	}
	var hits atomic.Int64
	reg, err := testimage.ServeWrapped(ctx, img, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if err := reg.Push(ctx, img, "pause:3.9"); err != nil {
		t.Fatal(err)
	}
	hits.Store(0)
	return reg, &hits
}

// TestImageMirror pulls through a mirror that replaces its upstream (an
// air-gapped node): the upstream is never contacted and the image keeps
// its upstream name. Then a mirror that is down falls back to the upstream.
func TestImageMirror(t *testing.T) {
	if suite.Options().External() {
		t.Skip("configures a private daemon's mirrors; -endpoint given")
	}
	upstream, upstreamHits := countingRegistry(t)
	mirror, mirrorHits := countingRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a mirror that refuses connections
	if err != nil {
		t.Fatal(err)
	}
	deadMirror := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(upstream.Host)
	otherUpstream := net.JoinHostPort("localhost", port)

	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		c.Image.Registries = map[string]framework.RegistryConfig{
			upstream.Host: {Mirrors: []string{"http://" + mirror.Host}, SkipUpstream: true},
			otherUpstream: {Mirrors: []string{"http://" + deadMirror}},
		}
	})
	ctx := framework.Context(t)

	ref := upstream.Host + "/pause:3.9"
	id := pullImage(t, env, ref)
	if n := upstreamHits.Load(); n != 0 {
		t.Errorf("upstream got %d requests although the mirror replaces it", n)
	}
	if mirrorHits.Load() == 0 {
		t.Errorf("the mirror got no request")
	}
	st, err := env.ImageService().ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(ref)})
	if err != nil || st.GetImage().GetId() != id {
		t.Fatalf("ImageStatus(%q) = %v, %v", ref, st.GetImage(), err)
	}
	if !slices.Contains(st.GetImage().GetRepoTags(), ref) {
		t.Errorf("repo tags %q lack the upstream name %q", st.GetImage().GetRepoTags(), ref)
	}

	// localhost reaches the same upstream registry under another name,
	// whose only mirror is down: the pull falls back to the upstream.
	upstreamHits.Store(0)
	pullImage(t, env, otherUpstream+"/pause:3.9")
	if upstreamHits.Load() == 0 {
		t.Errorf("fallback pull never reached the upstream")
	}
}
