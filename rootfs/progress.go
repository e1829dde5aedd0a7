package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultNoProgressTimeout is how long a registry may send nothing — no
// response headers, no body bytes — before the request fails with
// ErrNoProgress. Five minutes, like containerd's image_pull_progress_timeout:
// long enough for a slow registry under load, short enough that a stalled
// connection does not hang kubelet's pull forever.
const DefaultNoProgressTimeout = 5 * time.Minute

// DefaultProgressInterval is how often a running pull logs its progress.
const DefaultProgressInterval = 10 * time.Second

// PullObserver is told about every registry pull, for metrics. Its methods
// are called from the pulling goroutines, PullBytes for every read of a
// response body: they must be quick and safe for concurrent use.
type PullObserver interface {
	// PullStarted is called when a pull of ref starts.
	PullStarted(ref string)
	// PullBytes is called as n more bytes of a pull arrive.
	PullBytes(n int64)
	// PullDone is called when the pull of ref that received bytes in all
	// ends after took; err is nil when it succeeded.
	PullDone(ref string, err error, took time.Duration, bytes int64)
}

// pullProgress is what one pull has done so far. Its byte count grows as
// response bodies are read (all of them: manifests, configs and layer
// blobs, from every endpoint tried); the totals are known once the
// manifest is.
type pullProgress struct {
	bytes       atomic.Int64
	totalBytes  atomic.Int64
	layers      atomic.Int64
	totalLayers atomic.Int64
	obs         PullObserver // nil: none
}

func (p *pullProgress) addBytes(n int) {
	p.bytes.Add(int64(n))
	if p.obs != nil {
		p.obs.PullBytes(int64(n))
	}
}

// setTotals records the layers of the image and their compressed size.
func (p *pullProgress) setTotals(layers int, bytes int64) {
	if p == nil {
		return
	}
	p.totalLayers.Store(int64(layers))
	p.totalBytes.Store(bytes)
	p.layers.Store(0)
}

// layerDone counts one layer stored (downloaded or present already).
func (p *pullProgress) layerDone() {
	if p != nil {
		p.layers.Add(1)
	}
}

// watch sends req through next and fails it with ErrNoProgress when no
// response headers arrive, or no body bytes, for timeout. The timer is
// per request: a pull that waits for another pull's layer is not stalled.
func watch(next http.RoundTripper, req *http.Request, timeout time.Duration) (*http.Response, error) {
	progress := progressFrom(req.Context())
	if timeout <= 0 {
		resp, err := next.RoundTrip(req)
		if err == nil && progress != nil {
			resp.Body = &watchedBody{ReadCloser: resp.Body, progress: progress}
		}
		return resp, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stalled := fmt.Errorf("%w: %s sent nothing for %s", ErrNoProgress, req.URL.Host, timeout)
	timer := time.AfterFunc(timeout, func() { cancel(stalled) })
	resp, err := next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, ErrNoProgress) {
			return nil, cause
		}
		return nil, err
	}
	timer.Reset(timeout)
	resp.Body = &watchedBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, timer: timer, timeout: timeout, progress: progress}
	return resp, nil
}

// watchedBody counts the bytes of a response body and re-arms the
// no-progress timer on every read that returns some.
type watchedBody struct {
	io.ReadCloser
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    *time.Timer
	timeout  time.Duration
	progress *pullProgress
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if b.timer != nil {
			b.timer.Reset(b.timeout)
		}
		if b.progress != nil {
			b.progress.addBytes(n)
		}
	}
	if err != nil && b.ctx != nil && !errors.Is(err, io.EOF) {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrNoProgress) {
			return n, cause
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
		b.cancel(nil)
	}
	return b.ReadCloser.Close()
}

type progressKey struct{}

// withProgress makes requests sent with the returned context count their
// response body bytes in p.
func withProgress(ctx context.Context, p *pullProgress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// progressFrom returns the pull progress of ctx, nil when it has none (an
// import).
func progressFrom(ctx context.Context) *pullProgress {
	p, _ := ctx.Value(progressKey{}).(*pullProgress)
	return p
}

// trackPull logs the progress of the pull of ref every interval until the
// returned function is called, which logs the outcome and tells obs (when
// not nil) that the pull ended.
func trackPull(log *slog.Logger, interval time.Duration, obs PullObserver, ref string) (*pullProgress, func(err error)) {
	p := &pullProgress{obs: obs}
	if obs != nil {
		obs.PullStarted(ref)
	}
	start := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := p.bytes.Load()
				log.Info("pulling image", "ref", ref,
					"bytes", n, "total_bytes", p.totalBytes.Load(),
					"layers", p.layers.Load(), "total_layers", p.totalLayers.Load(),
					"MBps", rate(n, time.Since(start)))
			}
		}
	}()
	return p, func(err error) {
		close(done)
		<-stopped
		n, d := p.bytes.Load(), time.Since(start)
		if obs != nil {
			obs.PullDone(ref, err, d, n)
		}
		if err != nil {
			log.Warn("pull failed", "ref", ref, "bytes", n, "duration", d.Round(time.Millisecond), "err", err)
			return
		}
		log.Info("pulled image", "ref", ref, "bytes", n, "layers", p.totalLayers.Load(), "duration", d.Round(time.Millisecond), "MBps", rate(n, d))
	}
}

// rate is n bytes over d in MB/s, rounded to 0.1.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(int64(float64(n)/d.Seconds()/1e6*10)) / 10
}
