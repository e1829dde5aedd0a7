package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNewNotifier(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		enabled bool
		ping    time.Duration
		wantErr bool
	}{
		{"not under systemd", nil, false, 0, false},
		{"notify only", map[string]string{"NOTIFY_SOCKET": "@sd"}, true, 0, false},
		{"watchdog", map[string]string{"NOTIFY_SOCKET": "/run/sd", "WATCHDOG_USEC": "30000000"}, true, 15 * time.Second, false},
		{"watchdog for this pid", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, true, time.Second, false},
		{"watchdog for another pid", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"}, true, 0, false},
		{"watchdog without socket", map[string]string{"WATCHDOG_USEC": "2000000"}, false, 0, false},
		{"bad watchdog", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "soon"}, false, 0, true},
		{"zero watchdog", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "0"}, false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := newNotifier(func(k string) string { return tc.env[k] }, 42)
			if (err != nil) != tc.wantErr {
				t.Fatalf("newNotifier: err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if n.enabled() != tc.enabled || n.pingInterval() != tc.ping {
				t.Errorf("enabled %v ping %v, want %v %v", n.enabled(), n.pingInterval(), tc.enabled, tc.ping)
			}
		})
	}
}

// sdSocket is a stand-in for systemd's notify socket.
type sdSocket struct {
	conn *net.UnixConn
	name string
}

func newSDSocket(t *testing.T, name string) *sdSocket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sdSocket{conn: conn, name: name}
}

// next returns the next message, or "" when none comes within d.
func (s *sdSocket) next(t *testing.T, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	s.conn.SetReadDeadline(time.Now().Add(d))
	n, err := s.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyReachesAbstractAndPathSockets(t *testing.T) {
	for _, name := range []string{
		fmt.Sprintf("@cubby-test-notify-%d", time.Now().UnixNano()),
		filepath.Join(t.TempDir(), "notify"),
	} {
		sock := newSDSocket(t, name)
		n := &notifier{socket: name}
		if err := n.notify("READY=1"); err != nil {
			t.Fatalf("notify %q: %v", name, err)
		}
		if got := sock.next(t, 5*time.Second); got != "READY=1" {
			t.Errorf("socket %q got %q, want READY=1", name, got)
		}
	}
	if err := (&notifier{}).notify("READY=1"); err != nil {
		t.Errorf("notify without a socket: %v", err)
	}
}

// fakeRuntime answers Version, as much of CRI as the health check uses.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "fake"}, nil
}

// fakeStore's Ping fails while failing is set.
type fakeStore struct{ failing atomic.Bool }

func (s *fakeStore) Ping() error {
	if s.failing.Load() {
		return errors.New("store is stuck")
	}
	return nil
}

// startFakeCRI returns a listener on a fresh socket and a server for it.
func startFakeCRI(t *testing.T) (net.Listener, *grpc.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cri.sock")
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(g, fakeRuntime{})
	return ln, g, path
}

func TestServeCRINotifiesSystemd(t *testing.T) {
	sock := newSDSocket(t, fmt.Sprintf("@cubby-test-serve-%d", time.Now().UnixNano()))
	ln, g, path := startFakeCRI(t)
	db := &fakeStore{}
	h, err := newHealth(db, path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	const watchdog = 200 * time.Millisecond
	sd := &notifier{socket: sock.name, watchdog: watchdog}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveCRI(ctx, log, g, ln, sd, h.check) }()

	if got := sock.next(t, 10*time.Second); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first message %q, want READY=1", got)
	}
	// The socket serves once READY is sent.
	if err := h.check(context.Background()); err != nil {
		t.Fatalf("health check after READY: %v", err)
	}
	if got := sock.next(t, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("message while healthy %q, want WATCHDOG=1", got)
	}

	db.failing.Store(true)
	// A ping already under way may still arrive; then none may.
	sock.next(t, watchdog)
	for deadline := time.Now().Add(4 * watchdog); time.Now().Before(deadline); {
		if got := sock.next(t, watchdog/4); got != "" {
			t.Fatalf("message %q while the health check fails", got)
		}
	}
	db.failing.Store(false)
	if got := sock.next(t, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("message after recovery %q, want WATCHDOG=1", got)
	}

	cancel()
	for {
		got := sock.next(t, 10*time.Second)
		if got == "WATCHDOG=1" {
			continue // sent before the cancel
		}
		if got != "STOPPING=1" {
			t.Fatalf("message on shutdown %q, want STOPPING=1", got)
		}
		break
	}
	if err := <-done; err != nil {
		t.Errorf("serveCRI: %v", err)
	}
	if got := sock.next(t, 3*watchdog); got != "" {
		t.Errorf("message %q after shutdown", got)
	}
}

func TestHealthCheckFailsWithoutCRISocket(t *testing.T) {
	ln, g, path := startFakeCRI(t)
	go g.Serve(ln)
	h, err := newHealth(&fakeStore{}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.check(ctx); err != nil {
		t.Fatalf("check against a serving socket: %v", err)
	}
	g.Stop()
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.check(ctx); err == nil || !strings.Contains(err.Error(), "CRI Version") {
		t.Errorf("check against a stopped socket: err = %v, want a CRI Version error", err)
	}
}

func TestWaitHealthyGivesUp(t *testing.T) {
	errc := make(chan error)
	start := time.Now()
	err := waitHealthy(context.Background(), func(context.Context) error { return errors.New("broken") }, errc, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("waitHealthy = %v, want the health check's error", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Errorf("waitHealthy gave up after %v, want about 300ms", d)
	}
	// A stop signal during start-up is no error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitHealthy(ctx, func(context.Context) error { return errors.New("broken") }, errc, time.Hour); err != nil {
		t.Errorf("waitHealthy after cancel = %v", err)
	}
}
