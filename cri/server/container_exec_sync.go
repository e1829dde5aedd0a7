package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
	"cubby/sandbox"
)

// maxExecOutput caps ExecSync's stdout and stderr together, so the whole
// response (two length-prefixed fields and the exit code) fits in one
// message. containerd caps each stream at 16 MiB, which a response with
// both full cannot be sent in.
const maxExecOutput = MaxMessageSize - 1<<10

// execReadChunk is how much of an exec's output is read at a time.
const execReadChunk = 32 << 10

// execReleaseAbove is the output size of an ExecSync after which cubbyd
// hands the memory the output went through back to the OS (see
// memReleaser).
const execReleaseAbove = 4 << 20

// execDrainTimeout bounds how long output is still read after the exec
// exited: a background process it started may hold its pipes open.
const execDrainTimeout = 2 * time.Second

// execKillTimeout bounds the wait for a timed-out exec to be reaped.
const execKillTimeout = 10 * time.Second

// ExecSync runs a command in a running container and returns its output
// and exit code. On timeout the command and everything it started are
// killed and the call fails with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(r.GetCmd()) == 0 || r.GetCmd()[0] == "" {
		return nil, fmt.Errorf("exec command is empty: %w", errInvalidArgument)
	}
	if r.GetTimeout() < 0 {
		return nil, fmt.Errorf("exec timeout %d is negative: %w", r.GetTimeout(), errInvalidArgument)
	}
	c, rec, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	done, err := s.execSlot(c)
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := s.startExec(ctx, c, rec, sandbox.ExecOptions{Args: r.GetCmd(), Stdout: true, Stderr: true})
	if err != nil {
		return nil, err
	}
	defer p.Close()

	out := newExecOutput(maxExecOutput)
	defer func() {
		// Also on a timeout, when the copies may still be reading.
		if read, kept := out.sizes(); read > execReleaseAbove {
			s.log.Debug("large exec output", "container", c.id, "read", read, "kept", kept)
			s.release.soon()
		}
	}()
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); out.readFrom(p.Stdout, &out.stdout) }()
	go func() { defer copies.Done(); out.readFrom(p.Stderr, &out.stderr) }()

	exit, err := s.waitExec(ctx, p, time.Duration(r.GetTimeout())*time.Second)
	if err != nil {
		return nil, fmt.Errorf("exec %q in container %q: %w", r.GetCmd()[0], c.id, err)
	}
	drain := time.Now().Add(execDrainTimeout)
	_ = p.Stdout.SetReadDeadline(drain)
	_ = p.Stderr.SetReadDeadline(drain)
	copies.Wait()
	return &runtimeapi.ExecSyncResponse{Stdout: out.stdout.bytes(), Stderr: out.stderr.bytes(), ExitCode: exit.Code}, nil
}

// runningContainer finds container id and checks that it runs.
func (s *Server) runningContainer(id string) (*container, store.Container, error) {
	c, err := s.objs.ctrs.get(id)
	if err != nil {
		return nil, store.Container{}, err
	}
	rec := c.status()
	if rec.State != store.ContainerRunning {
		return nil, rec, fmt.Errorf("container %q is %s, not running: %w", c.id, rec.State, errFailedPrecondition)
	}
	return c, rec, nil
}

// execSlot takes one of container c's exec slots (ExecSync and streaming
// exec alike), or fails with ResourceExhausted when all are in use; done
// gives it back.
func (s *Server) execSlot(c *container) (done func(), err error) {
	if n := c.execs.Add(1); int(n) > s.cfg.MaxConcurrentExecs {
		c.execs.Add(-1)
		return nil, fmt.Errorf("container %q already runs %d execs, the most one container may run at once (containers.max_concurrent_execs): %w",
			c.id, s.cfg.MaxConcurrentExecs, errResourceExhausted)
	}
	return func() { c.execs.Add(-1) }, nil
}

// startExec starts a process in running container c.
func (s *Server) startExec(ctx context.Context, c *container, rec store.Container, opts sandbox.ExecOptions) (*sandbox.ExecProcess, error) {
	procs, err := s.cgroups.ProcsFiles(rec.CgroupPath)
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.id, err)
	}
	opts.CgroupProcsFiles = procs
	p, err := s.rt.Exec(ctx, rec.PodID, c.id, opts)
	if errors.Is(err, sandbox.ErrPodNotRunning) {
		return nil, fmt.Errorf("exec in container %q: its pod is not running: %w", c.id, errFailedPrecondition)
	}
	if err != nil {
		// An exec that races the container's exit fails in odd ways (a
		// fork into a pid namespace whose init is gone is ENOMEM): when
		// the container turns out to have exited, say so.
		select {
		case <-c.exited:
			return nil, fmt.Errorf("exec in container %q: it exited: %w", c.id, errFailedPrecondition)
		case <-time.After(execExitGrace):
		}
		return nil, fmt.Errorf("exec in container %q: %w", c.id, err)
	}
	return p, nil
}

// execExitGrace is how long a failed exec waits to learn whether the
// container exited under it (its exit is being recorded).
const execExitGrace = time.Second

// waitExec waits for p to exit. When timeout (if > 0) passes or ctx ends
// first, p is killed with everything it started, and the error says why.
func (s *Server) waitExec(ctx context.Context, p *sandbox.ExecProcess, timeout time.Duration) (sandbox.Exit, error) {
	type result struct {
		exit sandbox.Exit
		err  error
	}
	done := make(chan result, 1)
	go func() {
		e, err := p.Wait()
		done <- result{e, err}
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var why error
	select {
	case r := <-done:
		return r.exit, r.err
	case <-expired:
		why = fmt.Errorf("timed out after %s: %w", timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		why = ctx.Err()
	}
	_ = p.Kill()
	select {
	case <-done:
	case <-time.After(execKillTimeout):
	}
	return sandbox.Exit{}, why
}

// execOutput collects an exec's stdout and stderr within one budget: what
// arrives once the budget is spent is read (so the command never blocks on
// a full pipe) and dropped. Nothing beyond the budget is ever held, and
// what is kept sits in fixed-size chunks until the end (no slice growing
// by copies): the memory an exec costs is its kept output twice, at most.
type execOutput struct {
	mu             sync.Mutex
	room           int   // bytes still to keep, both streams together
	read           int64 // bytes read, kept or not
	stdout, stderr chunks
}

func newExecOutput(limit int) *execOutput { return &execOutput{room: limit} }

// readFrom reads f to EOF (or its deadline) into dst, keeping what the
// budget allows.
func (o *execOutput) readFrom(f *os.File, dst *chunks) {
	buf := make([]byte, execReadChunk)
	for {
		n, err := f.Read(buf)
		o.keep(dst, buf[:n])
		if err != nil { // EOF, or the drain deadline passed
			return
		}
	}
}

// keep adds what fits of b to dst.
func (o *execOutput) keep(dst *chunks, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.read += int64(len(b))
	n := min(len(b), o.room)
	o.room -= n
	dst.write(b[:n])
}

// sizes returns the bytes read so far and those kept, both streams.
func (o *execOutput) sizes() (read int64, kept int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.read, o.stdout.size + o.stderr.size
}

// chunks is a byte stream kept in chunks of execReadChunk bytes.
type chunks struct {
	list [][]byte
	size int
}

func (c *chunks) write(b []byte) {
	for len(b) > 0 {
		if len(c.list) == 0 || len(c.list[len(c.list)-1]) == execReadChunk {
			c.list = append(c.list, make([]byte, 0, execReadChunk))
		}
		last := &c.list[len(c.list)-1]
		n := min(len(b), execReadChunk-len(*last))
		*last = append(*last, b[:n]...)
		b = b[n:]
		c.size += n
	}
}

// bytes joins the chunks into one slice (nil when empty) and drops them.
func (c *chunks) bytes() []byte {
	if c.size == 0 {
		return nil
	}
	out := make([]byte, 0, c.size)
	for _, b := range c.list {
		out = append(out, b...)
	}
	c.list = nil
	return out
}
