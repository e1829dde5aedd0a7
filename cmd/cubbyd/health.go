package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// health probes cubbyd the way its clients use it: the metadata store
// answers a read, and the CRI socket answers a Version call. It feeds the
// systemd watchdog, so a daemon that stops answering is restarted.
type health struct {
	db   interface{ Ping() error }
	conn *grpc.ClientConn
	cri  runtimeapi.RuntimeServiceClient
}

// newHealth prepares the probes of the store db and the CRI socket; it
// connects lazily, on the first check.
func newHealth(db interface{ Ping() error }, socket string) (*health, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("health check client for %q: %w", socket, err)
	}
	return &health{db: db, conn: conn, cri: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// check returns nil when both probes answer before ctx ends.
func (h *health) check(ctx context.Context) error {
	if err := h.db.Ping(); err != nil {
		return err
	}
	if _, err := h.cri.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		return fmt.Errorf("CRI Version over %q: %w", h.conn.Target(), err)
	}
	return nil
}

func (h *health) close() { h.conn.Close() }

// Time limits of the daemon's life cycle.
const (
	// shutdownGrace is how long SIGTERM waits for in-flight CRI calls.
	shutdownGrace = 10 * time.Second
	// readyTimeout bounds the wait for the CRI socket to answer its first
	// health check after start-up.
	readyTimeout = 30 * time.Second
	// readyPoll is the pause between those first checks.
	readyPoll = 50 * time.Millisecond
)

// serveCRI serves g on ln until ctx ends. Under systemd it reports READY=1
// once check passes over the socket, feeds the watchdog only while check
// keeps passing, and reports STOPPING=1 before the graceful stop.
func serveCRI(ctx context.Context, log *slog.Logger, g *grpc.Server, ln net.Listener, sd *notifier, check func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	if err := waitHealthy(ctx, check, errc, readyTimeout); err != nil {
		g.Stop()
		return err
	}
	if ctx.Err() == nil {
		if err := sd.notify("READY=1\nSTATUS=serving CRI on " + ln.Addr().String()); err != nil {
			log.Warn("cannot tell systemd cubbyd is ready", "error", err)
		}
	}
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	if iv := sd.pingInterval(); iv > 0 {
		go feedWatchdog(wdCtx, log, sd, iv, check)
	}
	select {
	case <-ctx.Done():
		stopWatchdog()
		log.Info("shutting down")
		if err := sd.notify("STOPPING=1"); err != nil {
			log.Warn("cannot tell systemd cubbyd is stopping", "error", err)
		}
		gracefulStop(log, g)
		return nil
	case err := <-errc:
		return err
	}
}

// waitHealthy waits until check first passes. A daemon whose own socket
// never answers fails start-up rather than reporting ready.
func waitHealthy(ctx context.Context, check func(context.Context) error, errc <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := check(cctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return nil // a signal during start-up is a normal stop
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cubbyd does not answer its own health check %v after start: %w", timeout, err)
		}
		select {
		case err := <-errc:
			return fmt.Errorf("serve CRI: %w", err)
		case <-ctx.Done():
			return nil
		case <-time.After(readyPoll):
		}
	}
}

// feedWatchdog sends WATCHDOG=1 every interval while check passes; a failing
// check skips the ping, so systemd restarts a daemon stuck for longer than
// WatchdogSec.
func feedWatchdog(ctx context.Context, log *slog.Logger, sd *notifier, interval time.Duration, check func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("health check failed; not feeding the systemd watchdog", "error", err)
			continue
		}
		if err := sd.notify("WATCHDOG=1"); err != nil {
			log.Warn("cannot feed the systemd watchdog", "error", err)
		}
	}
}

// gracefulStop gives in-flight calls a grace period; a long pull must not
// hold up a restart.
func gracefulStop(log *slog.Logger, g *grpc.Server) {
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.Warn("calls still running after the grace period; stopping them", "grace", shutdownGrace)
		g.Stop()
	}
}
