package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrDaemonExited is returned when cubbyd exits while the suite waits for it
// to serve.
var ErrDaemonExited = errors.New("cubbyd exited")

// Daemon is one cubbyd process started from a binary and a config file, with
// its output appended to a log file. It can be stopped and started again on
// the same config, directories and socket.
type Daemon struct {
	Binary     string
	ConfigPath string
	LogPath    string
	Config     DaemonConfig

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
}

// Start starts cubbyd and waits until it answers Version on its socket.
func (d *Daemon) Start(ctx context.Context) error {
	if d.cmd != nil {
		return fmt.Errorf("start cubbyd on %s: already running", d.Config.Listen)
	}
	logf, err := os.OpenFile(d.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open cubbyd log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== critest: starting cubbyd at %s\n", time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(d.Binary,
		"--config", d.ConfigPath,
		"--listen", d.Config.Listen,
		"--root", d.Config.Root,
		"--state", d.Config.State)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if len(d.Config.Env) > 0 {
		cmd.Env = append(os.Environ(), d.Config.Env...)
	}
	// Do not outlive a test binary killed by its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cubbyd on %s: %w", d.Config.Listen, err)
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()

	err = Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-d.exited:
			return false, fmt.Errorf("%w: %v", ErrDaemonExited, d.err)
		default:
		}
		if _, err := os.Stat(d.Config.Listen); err != nil {
			return false, nil
		}
		return ping(ctx, "unix://"+d.Config.Listen) == nil, nil
	})
	if err != nil {
		_ = d.Kill()
		return fmt.Errorf("wait for cubbyd on %s (log %s): %w", d.Config.Listen, d.LogPath, err)
	}
	return nil
}

// Running reports whether the daemon process is alive.
func (d *Daemon) Running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// WaitExit waits up to timeout for the daemon to exit on its own (a fault
// point killed it) and reports how it ended.
func (d *Daemon) WaitExit(timeout time.Duration) error {
	if d.cmd == nil {
		return fmt.Errorf("cubbyd on %s: not started", d.Config.Listen)
	}
	select {
	case <-d.exited:
	case <-time.After(timeout):
		return fmt.Errorf("cubbyd %d still runs after %s", d.cmd.Process.Pid, timeout)
	}
	d.cmd = nil
	return d.err
}

// Kill sends SIGKILL and waits for the process to be gone.
func (d *Daemon) Kill() error {
	if d.cmd == nil {
		return nil
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill cubbyd %d: %w", d.cmd.Process.Pid, err)
	}
	<-d.exited
	d.cmd = nil
	return nil
}

// Stop sends SIGTERM and waits up to timeout for a clean exit; after that it
// kills the daemon and reports that it did not shut down.
func (d *Daemon) Stop(timeout time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	pid := d.cmd.Process.Pid
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("terminate cubbyd %d: %w", pid, err)
	}
	select {
	case <-d.exited:
	case <-time.After(timeout):
		_ = d.Kill()
		return fmt.Errorf("cubbyd %d ignored SIGTERM for %s: killed", pid, timeout)
	}
	err := d.err
	d.cmd = nil
	if err != nil {
		return fmt.Errorf("cubbyd %d exit after SIGTERM: %w", pid, err)
	}
	return nil
}

// Pid returns the daemon's process id, or 0 when it is not running.
func (d *Daemon) Pid() int {
	if !d.Running() {
		return 0
	}
	return d.cmd.Process.Pid
}

// MetricsAddress returns the host:port the daemon serves /metrics on, read
// from its log (the address it logs once listening, the free port a ":0"
// address picked); "" when it logs none.
func (d *Daemon) MetricsAddress() (string, error) {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return "", fmt.Errorf("read cubbyd log: %w", err)
	}
	addr := ""
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="metrics and health listening"`) {
			continue
		}
		_, rest, ok := strings.Cut(line, " address=")
		if ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
	}
	return addr, nil // the last start's
}

// Reload sends cubbyd SIGHUP and waits until it logs the outcome of the
// reload; it returns what the daemon logged from the signal on.
func (d *Daemon) Reload(timeout time.Duration) (string, error) {
	if !d.Running() {
		return "", fmt.Errorf("reload cubbyd on %s: not running", d.Config.Listen)
	}
	before, err := os.ReadFile(d.LogPath)
	if err != nil {
		return "", fmt.Errorf("read cubbyd log: %w", err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("SIGHUP cubbyd %d: %w", d.cmd.Process.Pid, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(d.LogPath)
		if err != nil {
			return "", fmt.Errorf("read cubbyd log: %w", err)
		}
		logged := string(b[min(len(before), len(b)):])
		if strings.Contains(logged, `msg="configuration reloaded"`) || strings.Contains(logged, `msg="configuration reload refused`) {
			return logged, nil
		}
		if !d.Running() {
			return logged, fmt.Errorf("%w after SIGHUP", ErrDaemonExited)
		}
		if time.Now().After(deadline) {
			return logged, fmt.Errorf("cubbyd %d logged no reload %s after SIGHUP", d.cmd.Process.Pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
