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

// progressLogInterval is how often a running pull logs its progress.
const progressLogInterval = 10 * time.Second

// watch sends req through next and fails it with ErrNoProgress when no
// response headers arrive, or no body bytes, for timeout. The timer is
// per request: a pull that waits for another pull's layer is not stalled.
func watch(next http.RoundTripper, req *http.Request, timeout time.Duration) (*http.Response, error) {
	counter := counterFrom(req.Context())
	if timeout <= 0 {
		resp, err := next.RoundTrip(req)
		if err == nil && counter != nil {
			resp.Body = &watchedBody{ReadCloser: resp.Body, counter: counter}
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
	resp.Body = &watchedBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, timer: timer, timeout: timeout, counter: counter}
	return resp, nil
}

// watchedBody counts the bytes of a response body and re-arms the
// no-progress timer on every read that returns some.
type watchedBody struct {
	io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
	counter *atomic.Int64
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if b.timer != nil {
			b.timer.Reset(b.timeout)
		}
		if b.counter != nil {
			b.counter.Add(int64(n))
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

type counterKey struct{}

// withCounter makes requests sent with the returned context add their
// response body bytes to c.
func withCounter(ctx context.Context, c *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, c)
}

func counterFrom(ctx context.Context) *atomic.Int64 {
	c, _ := ctx.Value(counterKey{}).(*atomic.Int64)
	return c
}

// logProgress logs the bytes received for ref every progressLogInterval
// until the returned function is called, which logs the total.
func logProgress(log *slog.Logger, ref string, c *atomic.Int64) func(err error) {
	start := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(progressLogInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := c.Load()
				log.Info("pulling image", "ref", ref, "bytes", n, "MBps", rate(n, time.Since(start)))
			}
		}
	}()
	return func(err error) {
		close(done)
		<-stopped
		n, d := c.Load(), time.Since(start)
		if err != nil {
			log.Warn("pull failed", "ref", ref, "bytes", n, "duration", d.Round(time.Millisecond), "err", err)
			return
		}
		log.Info("pulled image", "ref", ref, "bytes", n, "duration", d.Round(time.Millisecond), "MBps", rate(n, d))
	}
}

// rate is n bytes over d in MB/s, rounded to 0.1.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(int64(float64(n)/d.Seconds()/1e6*10)) / 10
}
