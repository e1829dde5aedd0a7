package keeper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
)

// Timeouts of the client.
const (
	// startTimeout bounds the wait for a new keeper to listen.
	startTimeout = 10 * time.Second
	// exitTimeout bounds the wait at Close for an idle keeper this client
	// started to exit, so that it is reaped and not orphaned.
	exitTimeout = 5 * time.Second
)

// LogName is the keeper's log file (its stderr) in the state directory.
const LogName = "keeper.log"

// Client spawns pod inits through the keeper of one state directory,
// starting the keeper when none runs.
type Client struct {
	dir    string
	binary string

	// restarts counts the keepers started to replace one that died
	// under this client.
	restarts atomic.Int64

	mu   sync.Mutex
	hold *holdConn
	// started is the keeper this client started, which is its child
	// until the client's process ends; nil if it found one running.
	started *Child
}

// holdConn is the connection a client keeps open to its keeper.
type holdConn struct {
	conn    *net.UnixConn
	pid     int           // the keeper's
	answers chan Response // answers to requests sent on conn
	closed  chan struct{} // closed when the keeper hangs up
}

// NewClient returns a client for the keeper of state directory dir, started
// from binary (cubby-pod) when needed. Nothing starts until the first Spawn.
func NewClient(dir, binary string) *Client {
	return &Client{dir: dir, binary: binary}
}

// ErrGone is returned when no keeper took a call.
var ErrGone = errors.New("pod init keeper is not running")

// Spawn starts a child of the keeper, starting the keeper first when none
// runs: argv req.Args of the cubby-pod binary, with files as its
// descriptors 0..n-1, in new namespaces req.CloneFlags, joined to
// req.CgroupProcsFiles before it is returned. The caller closes the Child.
func (c *Client) Spawn(ctx context.Context, req Request, files []*os.File) (*Child, error) {
	req.Op = OpSpawn
	for attempt := 0; ; attempt++ {
		if err := c.ensure(ctx); err != nil {
			return nil, err
		}
		child, err := c.spawn(ctx, req, files)
		// A keeper that was on its way out took nothing: once more
		// with a new one.
		if errors.Is(err, ErrGone) && attempt == 0 {
			c.forget()
			continue
		}
		return child, err
	}
}

func (c *Client) spawn(ctx context.Context, req Request, files []*os.File) (*Child, error) {
	conn, err := control.Dial(ctx, SocketPath(c.dir))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGone, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := control.SendFiles(conn, req, files); err != nil {
		return nil, fmt.Errorf("send spawn: %w", err)
	}
	line, fds, _, err := control.ReadFiles(conn)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("spawn: read answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		control.CloseFds(fds)
		return nil, fmt.Errorf("spawn: decode answer: %w", err)
	}
	if resp.Error != "" {
		control.CloseFds(fds)
		if resp.Error == errExiting {
			return nil, fmt.Errorf("%w: %s", ErrGone, resp.Error)
		}
		return nil, errors.New(resp.Error)
	}
	if len(fds) != 1 || resp.Pid <= 0 {
		control.CloseFds(fds)
		return nil, fmt.Errorf("spawn: answer has pid %d and %d descriptors, want a pid and a pidfd", resp.Pid, len(fds))
	}
	return newChild(resp.Pid, fds[0]), nil
}

// ensure connects the hold, starting a keeper when none answers.
func (c *Client) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lost := false
	if c.hold != nil {
		select {
		case <-c.hold.closed:
			c.hold = nil // the keeper died; its pod inits went to a subreaper
			lost = true
		default:
			return nil
		}
	}
	h, err := dialHold(ctx, c.dir)
	if errors.Is(err, ErrGone) {
		if err := c.start(ctx); err != nil {
			return err
		}
		if lost {
			c.restarts.Add(1)
		}
		h, err = dialHold(ctx, c.dir)
	}
	if err != nil {
		return err
	}
	c.hold = h
	return nil
}

// Restarts is how many keepers the client started to replace one that
// died under it (one that exits idle at Close is not counted).
func (c *Client) Restarts() int64 { return c.restarts.Load() }

// forget drops the hold, so that the next call finds or starts a keeper.
func (c *Client) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold != nil {
		c.hold.conn.Close()
		c.hold = nil
	}
}

func dialHold(ctx context.Context, dir string) (*holdConn, error) {
	conn, err := control.Dial(ctx, SocketPath(dir))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGone, err)
	}
	h := &holdConn{conn: conn, answers: make(chan Response, 1), closed: make(chan struct{})}
	if err := json.NewEncoder(conn).Encode(Request{Op: OpHold}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: send hold: %w", ErrGone, err)
	}
	go h.read()
	select {
	case resp, ok := <-h.answers:
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: hung up", ErrGone)
		case resp.Error == errExiting:
			conn.Close()
			return nil, fmt.Errorf("%w: %s", ErrGone, resp.Error)
		case resp.Error != "":
			conn.Close()
			return nil, fmt.Errorf("hold keeper: %s", resp.Error)
		}
		h.pid = resp.Pid
		return h, nil
	case <-ctx.Done():
		conn.Close()
		return nil, ctx.Err()
	}
}

// read delivers the keeper's answers until it hangs up.
func (h *holdConn) read() {
	defer close(h.closed)
	defer close(h.answers)
	dec := json.NewDecoder(h.conn)
	for {
		var resp Response
		if err := dec.Decode(&resp); err != nil {
			return
		}
		select {
		case h.answers <- resp:
		default: // nobody asked
		}
	}
}

// start starts a keeper as this process's child, in its own session.
func (c *Client) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.dir, LogName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open keeper log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	pidfd := -1
	pid, err := syscall.ForkExec(c.binary, []string{"cubby-pod", Arg, "--dir", c.dir, "--ready-fd", "3"}, &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: []uintptr{devnull.Fd(), logf.Fd(), logf.Fd(), readyW.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd},
	})
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start pod init keeper: %w", err)
	}
	child := newChild(pid, pidfd)
	deadline := time.Now().Add(startTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = readyR.SetReadDeadline(deadline)
	line, _ := bufio.NewReader(readyR).ReadString('\n')
	if line = strings.TrimSpace(line); line != "ok" {
		_ = child.Kill()
		child.reap(exitTimeout)
		child.Close()
		if line == "" {
			line = "no report (see " + filepath.Join(c.dir, LogName) + ")"
		}
		return fmt.Errorf("start pod init keeper: %s", line)
	}
	if c.started != nil {
		c.started.Close()
	}
	c.started = child
	return nil
}

// Close lets the keeper go, whoever started it: it exits once it has no pod
// init left. A keeper this client started and that is idle is waited for
// and reaped here, so that it never outlives its parent as an orphan.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hold
	c.hold = nil
	if h == nil {
		// A keeper left by a cubbyd that died is let go too.
		ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
		h, _ = dialHold(ctx, c.dir)
		cancel()
	}
	idle := false
	if h != nil {
		if err := json.NewEncoder(h.conn).Encode(Request{Op: OpRelease}); err == nil {
			select {
			case resp, ok := <-h.answers:
				idle = ok && resp.Children == 0
			case <-time.After(exitTimeout):
			}
		}
		h.conn.Close()
	}
	if c.started != nil {
		if idle {
			c.started.reap(exitTimeout)
		}
		c.started.Close()
		c.started = nil
	}
}

// Child is a process the keeper spawned, held by pidfd.
type Child struct {
	Pid   int
	pidfd *os.File
}

func newChild(pid, pidfd int) *Child {
	// Non-blocking, so that Wait goes through the runtime poller.
	_ = unix.SetNonblock(pidfd, true)
	return &Child{Pid: pid, pidfd: os.NewFile(uintptr(pidfd), "pidfd")}
}

// Kill sends SIGKILL to the child; a child that has exited is no error.
func (ch *Child) Kill() error {
	err := unix.PidfdSendSignal(int(ch.pidfd.Fd()), unix.SIGKILL, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// Exited tells whether the child has exited.
func (ch *Child) Exited() bool {
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(ch.pidfd.Fd()), Events: unix.POLLIN}}, 0)
	return err == nil && n > 0
}

// Wait returns once the child has exited, or with ctx's error.
func (ch *Child) Wait(ctx context.Context) error {
	rc, err := ch.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// The poller calls this whenever the pidfd turns readable,
		// which it does when the process exits.
		done <- rc.Read(func(uintptr) bool { return ch.Exited() })
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = ch.pidfd.SetReadDeadline(time.Now()) // wakes the Read
		<-done
		_ = ch.pidfd.SetReadDeadline(time.Time{})
		return ctx.Err()
	}
}

// reap waits up to timeout for a child of this process to exit and reaps
// it (unless someone else, a subreaper loop, already has).
func (ch *Child) reap(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if ch.Wait(ctx) == nil {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(ch.Pid, &ws, unix.WNOHANG, nil)
	}
}

// Close releases the pidfd.
func (ch *Child) Close() error { return ch.pidfd.Close() }
