package containerinit

import (
	"fmt"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// pidNamespacePath is the pid namespace file the spec joins ("" for a new
// pid namespace or the parent's).
func pidNamespacePath(l *specs.Linux) string {
	if l == nil {
		return ""
	}
	for _, ns := range l.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path
		}
	}
	return ""
}

// inPidNamespace runs start, which forks the init stage, so that the child
// is born in the pid namespace pinned at path (a container's, for a
// container that targets it) or, without a path, in pod (the pod's pid
// namespace). With neither it just calls start: the child is born in
// cubby-pod's. start must not make a new pid namespace when either is
// given: the kernel makes one only below the caller's own.
//
// setns(CLONE_NEWPID) is allowed in a multi-threaded process: it changes
// only the namespace the calling thread's next children are born in, not
// the thread's own. So it runs on a goroutine locked to its OS thread, and
// the fork happens from that thread. The goroutine ends without unlocking,
// which makes the Go runtime retire the thread: no other goroutine ever
// forks from it.
func inPidNamespace(path string, pod *os.File, start func() (*os.Process, error)) (*os.Process, error) {
	if path == "" && pod == nil {
		return start()
	}
	type result struct {
		proc *os.Process
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		ns := pod
		if path != "" {
			f, err := os.Open(path)
			if err != nil {
				done <- result{err: fmt.Errorf("open pid namespace: %w", err)}
				return
			}
			defer f.Close()
			ns = f
		} else {
			path = "of the pod"
		}
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID); err != nil {
			done <- result{err: fmt.Errorf("join pid namespace %s: %w", path, err)}
			return
		}
		proc, err := start()
		done <- result{proc, err}
	}()
	r := <-done
	return r.proc, r.err
}
