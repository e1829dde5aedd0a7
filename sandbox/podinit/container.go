package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/containerinit"
	"cubby/sandbox/control"
	"cubby/sandbox/crilog"
)

// container is one started container process.
//
//	running ──reaped──▶ draining (pipes to EOF) ──▶ exited (exit.json written, exited closed)
type container struct {
	id      string
	pid     int // in the pod init's pid namespace (the node's)
	hostPid int
	logDir  string // the pod's log directory: logPath is opened beneath it
	logPath string
	logs    *crilog.File
	io      sync.WaitGroup

	logMu  sync.Mutex
	log    *os.File // nil once the container's output is drained
	exit   control.Exit
	exited chan struct{}

	// stdin is the write end of the container's stdin (CRI stdin), or nil;
	// terminal the master of its terminal (CRI tty), or nil. Both are held
	// here so that attach works whatever happens to cubbyd.
	attachMu sync.Mutex
	stdin    *os.File
	terminal *os.File
	attached map[*attachment]struct{}

	// execSpec and execSeccomp are what an exec needs of the container's
	// spec and its compiled seccomp filter, read once at start (an exec
	// must not wait on the bundle).
	execSpec    *specs.Spec
	execSeccomp *containerinit.SeccompFilter
}

// start starts container req.ID from its bundle and returns its host pid
// and the time its command was exec'd.
func (s *server) start(req control.Request) (hostPid int, startedAt int64, err error) {
	spec, err := readSpec(filepath.Join(req.Bundle, "config.json"))
	if err != nil {
		return 0, 0, err
	}
	filter, err := containerinit.ReadSeccompFilter(req.Bundle)
	if err != nil {
		return 0, 0, fmt.Errorf("seccomp filter: %w", err)
	}
	logf, err := openLog(req.LogDir, req.LogPath)
	if err != nil {
		return 0, 0, fmt.Errorf("open log of %q: %w", req.ID, err)
	}
	cio, err := newContainerIO(spec.Annotations[control.AnnotationStdin] == "true", spec.Process != nil && spec.Process.Terminal)
	if err != nil {
		logf.Close()
		return 0, 0, fmt.Errorf("container stdio: %w", err)
	}

	// The reaper must not reap the child before it is registered (and its
	// host pid found among our children): it waits on reapMu, held from
	// before the fork until the registration. s.mu is held across the
	// start too, so no other start or kill sees a half-made container.
	s.reapMu.RLock()
	defer s.reapMu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		logf.Close()
		cio.closeChild()
		cio.closeParent()
		return 0, 0, fmt.Errorf("pod is shutting down")
	}
	if c, ok := s.containers[req.ID]; ok {
		logf.Close()
		cio.closeChild()
		cio.closeParent()
		return 0, 0, fmt.Errorf("container %q already started as pid %d", req.ID, c.pid)
	}
	pid, err := containerinit.Start(containerinit.StartOptions{
		Spec:             spec,
		PidNamespace:     s.podPidNamespace(),
		Seccomp:          filter,
		Stdin:            cio.child[0],
		Stdout:           cio.child[1],
		Stderr:           cio.child[2],
		CgroupProcsFiles: req.CgroupProcsFiles,
		Terminal:         cio.setTerminal,
		Binary:           s.bin,
	})
	cio.closeChild()
	if err != nil {
		logf.Close()
		cio.closeParent()
		return 0, 0, err
	}
	// The reaper cannot have reaped the child yet (reapMu is held), so
	// even a container that already exited is still there to be found.
	startedAt = time.Now().UnixNano()
	hostPid, err = findHostPid(pid)
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		logf.Close()
		cio.closeParent()
		return 0, 0, fmt.Errorf("find the host pid of %d: %w", pid, err)
	}
	if ownPidNamespace(spec) {
		if err := pinPidNamespace(hostPid, control.PidNamespacePath(req.Bundle)); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			logf.Close()
			cio.closeParent()
			return 0, 0, fmt.Errorf("pin pid namespace: %w", err)
		}
	}
	c := &container{id: req.ID, pid: pid, hostPid: hostPid, logDir: req.LogDir, logPath: req.LogPath, log: logf, logs: crilog.NewFile(logf), exited: make(chan struct{}),
		stdin: cio.stdin, terminal: cio.terminal, attached: map[*attachment]struct{}{},
		execSpec: containerinit.ExecSpec(spec), execSeccomp: filter}
	switch {
	case cio.terminal != nil:
		c.io.Add(1)
		go copyLog(&c.io, c.logs, crilog.Stdout, cio.terminalOut, c.fanout(crilog.Stdout))
	case cio.stdout != nil:
		c.io.Add(2)
		go copyLog(&c.io, c.logs, crilog.Stdout, cio.stdout, c.fanout(crilog.Stdout))
		go copyLog(&c.io, c.logs, crilog.Stderr, cio.stderr, c.fanout(crilog.Stderr))
	}
	s.containers[req.ID] = c
	s.byPid[pid] = c
	return hostPid, startedAt, nil
}

// podPidNamespace is the pod's pid namespace, which containers are forked
// into, or nil when the pod shares the pod init's (the node's).
func (s *server) podPidNamespace() *os.File {
	if s.pid1 == nil {
		return nil
	}
	return s.pid1.ns
}

// findHostPid translates nsPid, a child of this pod init as the pod init's
// pid namespace numbers it, into its pid on the host, which is what cubbyd
// and the host's tools see. /proc here is the host's (the pod init shares
// the host mount namespace), so /proc/self is the pod init's host pid, and
// the child is the one whose NSpid line names nsPid at the pod init's own
// depth (1 when the pod shares the host pid namespace, 2 in its own).
func findHostPid(nsPid int) (int, error) {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, err
	}
	depth, err := nsPidDepth("/proc/" + self + "/status")
	if err != nil {
		return 0, err
	}
	if depth == 1 {
		return nsPid, nil
	}
	tasks, err := os.ReadDir("/proc/" + self + "/task")
	if err != nil {
		return 0, err
	}
	want := strconv.Itoa(nsPid)
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + self + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, child := range strings.Fields(string(b)) {
			status, err := os.ReadFile("/proc/" + child + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				f := strings.Fields(line)
				if len(f) > depth && f[0] == "NSpid:" && f[depth] == want {
					return strconv.Atoi(child)
				}
			}
		}
	}
	return 0, fmt.Errorf("no child has pid %d in the pod", nsPid)
}

// nsPidDepth is the number of pid namespaces a process is in (the length
// of its NSpid line), read from its status file.
func nsPidDepth(statusFile string) (int, error) {
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return len(f) - 1, nil
		}
	}
	return 0, fmt.Errorf("%s has no NSpid line", statusFile)
}

// ownPidNamespace tells whether spec gives the container a new pid
// namespace of its own.
func ownPidNamespace(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}

// pinPidNamespace bind-mounts the pid namespace of hostPid, a child not
// yet reaped, onto path. A child that already exited has no namespace left
// to join: nothing is pinned then.
func pinPidNamespace(hostPid int, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o400)
	if err != nil {
		return fmt.Errorf("pin pid namespace: %w", err)
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/pid", hostPid)
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(path)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("pin pid namespace: bind %s to %s: %w", src, path, err)
	}
	return nil
}

func readSpec(path string) (*specs.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decode spec %s: %w", path, err)
	}
	return &spec, nil
}

func (s *server) kill(id string, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return fmt.Errorf("container %q not found in pod", id)
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	if _, reaped := s.byPid[c.pid]; !reaped {
		return nil // exit is being recorded
	}
	// The pid cannot have been reused: only the reaper frees it, under s.mu.
	if err := unix.Kill(c.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %d to container %q: %w", sig, id, err)
	}
	return nil
}

// forget drops the record of exited container id, which is being removed;
// its exit stays on disk until cubbyd removes that too. Forgetting an
// unknown container succeeds; a running one is an error.
func (s *server) forget(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil
	}
	select {
	case <-c.exited:
	default:
		return fmt.Errorf("forget container %q: still running", id)
	}
	delete(s.containers, id)
	return nil
}

// count returns how many containers the pod init keeps a record of.
func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.containers)
}

func (s *server) wait(id string) (*control.Exit, error) {
	s.mu.Lock()
	c, ok := s.containers[id]
	s.mu.Unlock()
	if !ok {
		e, found, err := control.ReadExit(s.dir, id)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("container %q not found in pod", id)
		}
		return &e, nil
	}
	<-c.exited
	e := c.exit
	return &e, nil
}
