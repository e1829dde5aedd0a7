package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WaitPodInit returns once pod id's init (pid, as recorded at start) has
// exited, or with ctx's error when ctx ends first. It watches a pidfd
// through Go's poller, so a waiting pod costs a goroutine, not a thread,
// and it works whether or not this process is the pod init's parent (after
// a cubbyd restart it is not). A pid that is not the pod's init any more
// counts as exited.
func (r *Runtime) WaitPodInit(ctx context.Context, id string, pid int) error {
	if pid <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch pod init %d of %q: %w", pid, id, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	// Opened after the check could race a reused pid; checked after the
	// open, the pidfd is known to be the pod init's.
	if !isPodInit(pid, id) {
		f.Close()
		return nil
	}
	exited := func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	done := make(chan error, 1)
	go func() {
		// Read calls exited whenever the poller says the pidfd is
		// readable, which it becomes when the process exits.
		done <- rc.Read(exited)
	}()
	select {
	case err := <-done:
		f.Close()
		if err != nil && !errors.Is(err, os.ErrClosed) {
			return r.pollPodInit(ctx, id, pid) // the poller did not take the pidfd
		}
		return nil
	case <-ctx.Done():
		f.Close() // wakes the Read
		<-done
		return ctx.Err()
	}
}

// pollPodInit is WaitPodInit without a poller: a check every second.
func (r *Runtime) pollPodInit(ctx context.Context, id string, pid int) error {
	for isPodInit(pid, id) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil
}
