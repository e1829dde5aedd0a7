package rootfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// throttledBlobs serves h, but sends blob bodies in chunks of chunk bytes,
// pausing between them.
func throttledBlobs(h http.Handler, chunk int, pause time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		for len(body) > 0 && r.Context().Err() == nil {
			n := min(chunk, len(body))
			_, _ = w.Write(body[:n])
			w.(http.Flusher).Flush()
			body = body[n:]
			time.Sleep(pause)
		}
	})
}

// recordingObserver is a PullObserver that keeps what it is told.
type recordingObserver struct {
	mu      sync.Mutex
	started []string
	bytes   int64
	done    []error
	doneN   []int64
}

func (o *recordingObserver) PullStarted(ref string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, ref)
}

func (o *recordingObserver) PullBytes(n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes += n
}

func (o *recordingObserver) PullDone(ref string, err error, took time.Duration, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, err)
	o.doneN = append(o.doneN, n)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPullProgress pulls from a registry that trickles its blobs: the pull
// logs its progress (bytes and layers done of their totals) every
// ProgressInterval, and the observer sees it start, every byte, and end.
func TestPullProgress(t *testing.T) {
	requireRoot(t)
	random := make([]byte, 48<<10)
	_, _ = rand.Read(random)
	layers := []v1.Layer{
		layerOf(t, file{name: "a", body: hex.EncodeToString(random[:24<<10])}),
		layerOf(t, file{name: "b", body: hex.EncodeToString(random[24<<10:])}),
	}
	reg := serveHandler(t, throttledBlobs(newRegistryHandler(), 4<<10, 15*time.Millisecond))
	ref := reg + "/slow:1"
	push(t, ref, testImage(t, v1.Config{}, layers...))

	var logged syncBuffer
	obs := &recordingObserver{}
	s, err := Open(Config{
		Root:             t.TempDir(),
		Logger:           slog.New(slog.NewTextHandler(&logged, nil)),
		ProgressInterval: 40 * time.Millisecond,
		PullObserver:     obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	img, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}

	var progress []string
	for _, line := range strings.Split(logged.String(), "\n") {
		if strings.Contains(line, `msg="pulling image"`) {
			progress = append(progress, line)
		}
	}
	if len(progress) < 2 {
		t.Fatalf("%d progress lines for a slow pull; want several:\n%s", len(progress), logged.String())
	}
	last := progress[len(progress)-1]
	for _, want := range []string{"ref=" + ref, " total_layers=2", " total_bytes=", " layers="} {
		if !strings.Contains(last, want) {
			t.Errorf("progress line %q lacks %q", last, want)
		}
	}
	if strings.Contains(last, " bytes=0 ") {
		t.Errorf("progress line %q: no bytes counted", last)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.started) != 1 || obs.started[0] != ref || len(obs.done) != 1 || obs.done[0] != nil {
		t.Fatalf("observer: started %v, done %v; want one successful pull of %s", obs.started, obs.done, ref)
	}
	if obs.bytes < img.Size || obs.doneN[0] != obs.bytes {
		t.Errorf("observer got %d bytes, %d at the end; want at least the image's %d, and equal", obs.bytes, obs.doneN[0], img.Size)
	}
}

// TestPullObserverFailure: a pull that fails is reported to the observer
// with its error.
func TestPullObserverFailure(t *testing.T) {
	obs := &recordingObserver{}
	s, err := Open(Config{Root: t.TempDir(), PullObserver: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Pull(context.Background(), deadHost(t)+"/x:1", nil); err == nil {
		t.Fatal("pull from a dead registry succeeded")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.started) != 1 || len(obs.done) != 1 || obs.done[0] == nil {
		t.Errorf("observer: started %v, done %v; want one failed pull", obs.started, obs.done)
	}
}
