package rootfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// droppingBlobs cuts the connection halfway through every GET of the blob
// with digest while drop is set: a registry or network failing mid-pull.
func droppingBlobs(h http.Handler, digest string, drop *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !drop.Load() || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rec.body.Bytes()[:rec.body.Len()/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

// bufferedResponse captures a handler's response.
type bufferedResponse struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(int)             {}

// TestPullInterrupted cuts a layer download off halfway: the pull fails,
// nothing of it is visible or left on disk, and the next pull completes.
func TestPullInterrupted(t *testing.T) {
	requireRoot(t)
	random := make([]byte, 256<<10)
	_, _ = rand.Read(random)
	layer := layerOf(t, file{name: "data", body: string(random)})
	var drop atomic.Bool
	drop.Store(true)
	reg := serveHandler(t, droppingBlobs(newRegistryHandler(), mustDigest(t, layer), &drop))
	push(t, reg+"/cut:1", testImage(t, v1.Config{}, layer, layerOf(t, file{name: "other", body: "o"})))

	s := openStore(t, t.TempDir())
	if _, err := s.Pull(context.Background(), reg+"/cut:1", nil); err == nil {
		t.Fatalf("pull over a connection cut halfway succeeded")
	}
	storeIsClean(t, s)

	drop.Store(false)
	img, err := s.Pull(context.Background(), reg+"/cut:1", nil)
	if err != nil {
		t.Fatalf("pull after the interrupted one: %v", err)
	}
	if got, err := s.Get(reg + "/cut:1"); err != nil || got.ID != img.ID {
		t.Fatalf("Get after the completed pull = %+v, %v", got, err)
	}
}
