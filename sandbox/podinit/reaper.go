package podinit

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
)

// ioDrainTimeout bounds how long an exit waits for the container's pipes to
// reach EOF (a process that escaped the pid namespace could hold them).
const ioDrainTimeout = 2 * time.Second

// shutdownTimeout bounds how long shutdown waits for killed containers.
const shutdownTimeout = 10 * time.Second

// reap collects every exited child. Exits of containers are recorded; other
// children (re-parented orphans, failed init stages) are just reaped.
func (s *server) reap() {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		finished := time.Now().UnixNano()
		e := control.Exit{Pid: pid, FinishedAt: finished}
		switch {
		case ws.Exited():
			e.Code = int32(ws.ExitStatus())
		case ws.Signaled():
			e.Signal = int(ws.Signal())
			e.Code = 128 + int32(ws.Signal())
		}
		s.mu.Lock()
		c, ok := s.byPid[pid]
		delete(s.byPid, pid)
		ex, isExec := s.execs[pid]
		delete(s.execs, pid)
		if s.pid1 != nil && pid == s.pid1.pid {
			// The pod's pid namespace is gone, and every process in
			// it: they were reaped before it (the kernel waits for
			// that), so their exits are being recorded.
			s.pid1Exit = &e
		}
		s.mu.Unlock()
		switch {
		case ok:
			go s.finish(c, e)
		case isExec:
			ex.exit = e
			close(ex.exited)
		}
	}
}

// pid1Exited tells whether the pod's PID 1 has been reaped.
func (s *server) pid1Exited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid1Exit != nil
}

// describeExit says how a process ended: "exit status 2" or "killed by
// signal 9".
func describeExit(e control.Exit) string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d", e.Signal)
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// finish waits for the container's output to drain, then records its exit:
// once a container is reported exited, its log is complete.
func (s *server) finish(c *container, e control.Exit) {
	drained := make(chan struct{})
	go func() { c.io.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(ioDrainTimeout):
	}
	c.logMu.Lock()
	c.log.Close()
	c.log = nil
	c.logMu.Unlock()
	c.closeInput()
	c.exit = e
	if err := control.WriteExit(s.dir, c.id, e); err != nil {
		fmt.Fprintf(os.Stderr, "cubby-pod: record exit of %q: %v\n", c.id, err)
	}
	close(c.exited)
}

// shutdown kills every container and waits (bounded) until all are recorded.
func (s *server) shutdown() {
	s.mu.Lock()
	s.stopping = true
	var all []*container
	for _, c := range s.containers {
		all = append(all, c)
		if _, running := s.byPid[c.pid]; running {
			_ = unix.Kill(c.pid, unix.SIGKILL)
		}
	}
	s.mu.Unlock()
	deadline := time.After(shutdownTimeout)
	for _, c := range all {
		for waiting := true; waiting; {
			select {
			case <-c.exited:
				waiting = false
			case <-time.After(50 * time.Millisecond):
				// SIGCHLD is handled by the main loop, which may be the
				// caller: reap here so shutdown cannot wait on itself.
				s.reap()
			case <-deadline:
				return
			}
		}
	}
}
