package framework

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Timeouts that bound a hang; none of them is an assertion on speed.
const (
	// startTimeout bounds waiting for a started cubbyd to serve.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a cubbyd gets to exit after SIGTERM.
	stopTimeout = 15 * time.Second
	// cleanupTimeout bounds each CRI call made from a cleanup.
	cleanupTimeout = 60 * time.Second
	// keeperExitTimeout bounds waiting for the pod init keeper to exit
	// after the daemon stopped.
	keeperExitTimeout = 10 * time.Second
)

// Env is the runtime under test for one test: the CRI clients and, for a
// private cubbyd, the daemon and everything made for it.
//
// Restart replaces the clients: fetch them with RuntimeService and
// ImageService after a restart instead of keeping old ones.
type Env struct {
	// Private is true when the suite started the daemon for this test.
	Private bool
	// Daemon is the private cubbyd; nil against an external endpoint.
	Daemon *Daemon

	endpoint string
	conn     *grpc.ClientConn
	rs       runtimeapi.RuntimeServiceClient
	is       runtimeapi.ImageServiceClient
}

// RuntimeService returns the current RuntimeService client.
func (e *Env) RuntimeService() runtimeapi.RuntimeServiceClient { return e.rs }

// ImageService returns the current ImageService client.
func (e *Env) ImageService() runtimeapi.ImageServiceClient { return e.is }

func (e *Env) connect() error {
	conn, err := dial(e.endpoint)
	if err != nil {
		return err
	}
	e.conn = conn
	e.rs = runtimeapi.NewRuntimeServiceClient(conn)
	e.is = runtimeapi.NewImageServiceClient(conn)
	return nil
}

func (e *Env) disconnect() {
	if e.conn != nil {
		_ = e.conn.Close()
		e.conn = nil
	}
}

// NewEnv returns the runtime for test t: the -endpoint runtime when given,
// otherwise a private cubbyd started for t and torn down (with leak checks)
// when t ends. A private daemon needs root; without it t is skipped.
//
// Options adjust the private daemon's config before it starts; they are
// ignored with -endpoint (tests that need them skip there).
func (s *Suite) NewEnv(t testing.TB, options ...func(*DaemonConfig)) *Env {
	t.Helper()
	if s.opts.External() {
		e := &Env{endpoint: s.opts.Endpoint}
		if err := e.connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.disconnect)
		return e
	}
	if os.Geteuid() != 0 {
		t.Skip("a private cubbyd needs root: run as root or pass -endpoint")
	}
	cubbyd, err := s.cubbydPath()
	if err != nil {
		t.Fatalf("cubbyd binary: %v", err)
	}

	base, err := os.MkdirTemp("", "cubby-critest-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, runs last: after the daemon is gone.
	t.Cleanup(func() { removeDir(t, base) })

	subnet, err := randomSubnet()
	if err != nil {
		t.Fatal(err)
	}
	id := RandomHex(3)
	cfg := DaemonConfig{
		Root:         filepath.Join(base, "root"),
		State:        filepath.Join(base, "state"),
		Listen:       filepath.Join(base, "cubby.sock"),
		CgroupParent: "/critest-env-" + id,
		CNI: CNIConfig{
			ConfDir:            filepath.Join(base, "net.d"),
			DefaultBridge:      "cbt" + id,
			DefaultSubnet:      subnet,
			DefaultNetworkName: "critest-" + id,
		},
	}
	for _, opt := range options {
		opt(&cfg)
	}
	for _, dir := range []string{cfg.Root, cfg.State, cfg.CNI.ConfDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d := &Daemon{
		Binary:     cubbyd,
		ConfigPath: filepath.Join(base, "cubbyd.toml"),
		LogPath:    filepath.Join(base, "cubbyd.log"),
		Config:     cfg,
	}
	if err := cfg.WriteFile(d.ConfigPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		RemoveCgroup(t, cfg.CgroupParent)
		removeLink(t, cfg.CNI.DefaultBridge)
		removeIPAMDir(t, cfg.CNI.DefaultNetworkName)
		removeNATRules(t, cfg.CNI.DefaultNetworkName)
	})
	t.Cleanup(func() {
		if t.Failed() {
			dumpLog(t, d.LogPath)
		}
	})

	e := &Env{Private: true, Daemon: d, endpoint: "unix://" + cfg.Listen}
	t.Cleanup(func() {
		if d.Running() {
			removeLeftoverPods(t, e.rs)
		}
		e.disconnect()
		if err := d.Stop(stopTimeout); err != nil {
			t.Error(err)
		}
		checkKeeperGone(t, cfg.State)
	})
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *Env) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := e.Daemon.Start(ctx); err != nil {
		return err
	}
	return e.connect()
}

// Restart kills the private cubbyd with SIGKILL, waits pause, and starts it
// again on the same config, directories and socket. Against an external
// endpoint it skips t.
func (e *Env) Restart(t testing.TB, pause time.Duration) {
	t.Helper()
	if !e.Private {
		t.Skip("restart needs a private cubbyd (not with -endpoint)")
	}
	e.disconnect()
	if err := e.Daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if err := e.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

// removeLeftoverPods stops and removes the pods a test left behind in a
// private daemon, and reports each as a leak.
func removeLeftoverPods(t testing.TB, rs runtimeapi.RuntimeServiceClient) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	resp, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("list leftover pods: %v", err)
		return
	}
	for _, p := range resp.GetItems() {
		t.Errorf("leak: pod %q (%s) still exists at the end of the test", p.GetId(), p.GetMetadata().GetName())
		if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("stop leftover pod %q: %v", p.GetId(), err)
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("remove leftover pod %q: %v", p.GetId(), err)
		}
	}
}

// dumpLog logs the tail of the daemon log of a failed test.
func dumpLog(t testing.TB, path string) {
	const max = 32 << 10
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read cubbyd log: %v", err)
		return
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("cubbyd log (%s, last %d bytes):\n%s", path, len(b), strings.TrimRight(string(b), "\n"))
}

// removeDir unmounts whatever a daemon left mounted under dir — reporting
// each as a leak — and removes dir. Unmounting first keeps RemoveAll from
// descending into a bind mount of something outside dir.
func removeDir(t testing.TB, dir string) {
	leaked, err := UnmountUnder(dir)
	for _, m := range leaked {
		t.Errorf("leak: mount %s (%s) left under %s", m.MountPoint, m.FSType, dir)
	}
	if err != nil {
		t.Errorf("unmount leftovers under %s: %v (not removing it)", dir, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

// removeIPAMDir removes host-local's state for a test network, reporting IP
// reservations that outlived their pods.
func removeIPAMDir(t testing.TB, network string) {
	dir := filepath.Join("/var/lib/cni/networks", network)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Errorf("read host-local state %s: %v", dir, err)
		return
	}
	for _, ent := range entries {
		if looksLikeIP(ent.Name()) {
			t.Errorf("leak: IP %s of network %s still reserved", ent.Name(), network)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

// removeNATRules reports and removes per-pod NAT rules of the test's
// network that outlived its pods.
func removeNATRules(t testing.TB, network string) {
	rules, err := RemoveNATRules(network)
	for _, r := range rules {
		t.Errorf("leak: nat rule %s", r)
	}
	if err != nil {
		t.Error(err)
	}
}

func looksLikeIP(name string) bool {
	return strings.Count(name, ".") == 3 || strings.Contains(name, ":")
}

// Context returns a context for the CRI calls of a test body, bounded so a
// hung runtime fails the test instead of the whole binary. Cleanups must not
// use it (it ends before they run): use CleanupContext.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// CleanupContext returns a context for CRI calls made from a cleanup.
func CleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cleanupTimeout)
}

// Config is the private daemon's config; zero against an external endpoint.
func (e *Env) Config() DaemonConfig {
	if e.Daemon == nil {
		return DaemonConfig{}
	}
	return e.Daemon.Config
}

// StartAgain starts the private daemon after it exited (a fault point
// killed it, or Daemon.Kill), with env replacing its extra environment.
func (e *Env) StartAgain(t testing.TB, env ...string) {
	t.Helper()
	if !e.Private {
		t.Skip("restart needs a private cubbyd (not with -endpoint)")
	}
	e.disconnect()
	if err := e.Daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	e.Daemon.Config.Env = env
	if err := e.start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
}

// checkKeeperGone checks that once every pod is gone and the daemon has
// stopped, its pod init keeper has exited too and was reaped: by the daemon
// that started it, or by the suite when a Restart orphaned it. What is
// left is reported and killed.
func checkKeeperGone(t testing.TB, state string) {
	t.Helper()
	var left []StateProcess
	deadline := time.Now().Add(keeperExitTimeout)
	for {
		ReapOrphans()
		left = StateProcesses(state)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range left {
		t.Errorf("leak: process %d still runs after cubbyd stopped: %s", p.Pid, p.Cmdline)
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	ReapOrphans()
}
