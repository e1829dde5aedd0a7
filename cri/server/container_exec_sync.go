package server

import (
	"bytes"
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

// maxExecOutput caps each of ExecSync's stdout and stderr, like containerd.
const maxExecOutput = 16 << 20

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
	p, err := s.startExec(ctx, c, rec, sandbox.ExecOptions{Args: r.GetCmd(), Stdout: true, Stderr: true})
	if err != nil {
		return nil, err
	}
	defer p.Close()

	var stdout, stderr cappedBuffer
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); stdout.readFrom(p.Stdout) }()
	go func() { defer copies.Done(); stderr.readFrom(p.Stderr) }()

	exit, err := s.waitExec(ctx, p, time.Duration(r.GetTimeout())*time.Second)
	if err != nil {
		return nil, fmt.Errorf("exec %q in container %q: %w", r.GetCmd()[0], c.id, err)
	}
	drain := time.Now().Add(execDrainTimeout)
	_ = p.Stdout.SetReadDeadline(drain)
	_ = p.Stderr.SetReadDeadline(drain)
	copies.Wait()
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: exit.Code}, nil
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

// cappedBuffer keeps the first maxExecOutput bytes written to it.
type cappedBuffer struct{ bytes.Buffer }

// readFrom reads f to EOF (or its deadline), keeping what fits.
func (b *cappedBuffer) readFrom(f *os.File) {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if room := maxExecOutput - b.Len(); room > 0 {
			b.Write(buf[:min(n, room)])
		}
		if err != nil { // EOF, or the drain deadline passed
			return
		}
	}
}
