package keeper

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
	"cubby/sandbox/sealedexe"
)

// Main runs this process as the keeper, from argv
// `cubby-pod keeper --dir DIR [--ready-fd N]`. It never returns.
func Main() {
	fs := flag.NewFlagSet("cubby-pod keeper", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory whose pod inits to keep")
	readyFD := fs.Int("ready-fd", 0, "fd to report readiness on")
	_ = fs.Parse(os.Args[2:])
	// The keeper lives as long as the node and its heap is only garbage
	// of finished calls: collect early rather than let it grow to the
	// runtime's default 4 MiB minimum goal.
	debug.SetGCPercent(25)
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "cubby-pod keeper: --dir is required (it is started by cubbyd)")
		os.Exit(2)
	}
	var ready *os.File
	if *readyFD > 0 {
		ready = os.NewFile(uintptr(*readyFD), "ready")
	}
	if err := Serve(*dir, ready); err != nil {
		fmt.Fprintf(os.Stderr, "cubby-pod keeper: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// server is a running keeper.
type server struct {
	// bin is the sealed copy of the keeper's own binary that every child
	// runs, from its directory: no pod init's /proc/<pid>/exe is the
	// host's file, and all of them share one copy's page cache.
	bin    *sealedexe.Dir
	socket string
	ln     *net.UnixListener
	// changed wakes the main loop when a hold ends.
	changed chan struct{}

	mu       sync.Mutex
	holds    int  // open hold connections
	released bool // the last hold to end said release
	closing  bool // the keeper is exiting; spawns are refused
	// spawned are the children the keeper forked (pod inits), until
	// reaped; any other child was adopted (see killAdopted).
	spawned map[int]bool
}

// Serve runs the keeper of state directory dir until it has nothing left
// to keep (see the package comment), reporting "ok" or the error on ready
// once it listens.
func Serve(dir string, ready *os.File) error {
	s, err := listen(dir)
	if ready != nil {
		if err != nil {
			fmt.Fprintln(ready, err)
		} else {
			fmt.Fprintln(ready, "ok")
		}
		ready.Close()
	}
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	accepted := make(chan error, 1)
	go func() { accepted <- s.acceptLoop() }()
	for {
		select {
		case <-sigs:
		case <-s.changed:
		case err := <-accepted:
			// Only reapAndMaybeClose closes the listener, and the loop
			// ends with it: this is a real failure.
			return fmt.Errorf("accept: %w", err)
		}
		if s.reapAndMaybeClose() {
			return nil
		}
	}
}

// listen makes this process a child subreaper and listens on dir's socket.
func listen(dir string) (*server, error) {
	// Children the pod inits leave behind (the containers of a pod in the
	// node's pid namespace) come here, not to PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	bin, err := sealedexe.Seal("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	// A relative bind has no sockaddr_un length limit to hit.
	if err := os.Chdir(dir); err != nil {
		bin.Close()
		return nil, err
	}
	defer os.Chdir("/")
	if err := os.Remove(SocketName); err != nil && !errors.Is(err, os.ErrNotExist) {
		bin.Close()
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketName, Net: "unix"})
	if err != nil {
		bin.Close()
		return nil, fmt.Errorf("listen on %s: %w", SocketPath(dir), err)
	}
	if err := os.Chmod(SocketName, 0o600); err != nil {
		ln.Close()
		bin.Close()
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // removed by the keeper itself, before it stops listening
	return &server{bin: bin, socket: SocketPath(dir), ln: ln, changed: make(chan struct{}, 1), spawned: map[int]bool{}}, nil
}

func (s *server) acceptLoop() error {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			return err
		}
		go s.serve(conn)
	}
}

// reapAndMaybeClose reaps every child that has exited and, when the keeper
// has nothing left to keep, stops listening and returns true.
func (s *server) reapAndMaybeClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Spawns hold mu from fork to cgroup join: a child is never reaped
	// (its pid freed) before its spawn is done with the pid.
	if s.reapExited() > 0 || s.holds > 0 || !s.released {
		return false
	}
	// A keeper whose parent is PID 1 (or outside its pid namespace, 0)
	// cannot know that it will be reaped: it stays, idle, for the next
	// cubbyd.
	if os.Getppid() <= 1 {
		return false
	}
	s.closing = true
	_ = os.Remove(s.socket)
	s.ln.Close()
	return true
}

// reapExited reaps every exited child, ends the adopted ones (see
// killAdopted) and returns how many children are left. mu is held.
func (s *server) reapExited() int {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil: // ECHILD: none left
			clear(s.spawned)
			return 0
		case pid == 0:
			return s.killAdopted()
		default:
			delete(s.spawned, pid)
		}
	}
}

// killAdopted SIGKILLs every child the keeper did not spawn and returns how
// many children it has (at least 1: wait4 has said there are some).
//
// An adopted child can only be what a dead pod init left behind: a living
// pod init is the subreaper of everything below it, so only its death
// hands its children to the keeper: its containers (and what they started
// in the node's pid namespace) and the pod's PID 1. Those in the pod's pid
// namespace are being killed by the kernel already (PID 1 dies with the
// pod init); containers with a pid namespace of their own, and those of a
// pod in the node's, are not. They must not run on unmonitored, their
// stdio and logs gone with the pod init: the keeper ends them all, whether
// cubbyd runs or not. cubbyd reports them as having died with their pod.
func (s *server) killAdopted() int {
	kids := children()
	for _, pid := range kids {
		if !s.spawned[pid] {
			_ = unix.Kill(pid, unix.SIGKILL) // our child: its pid cannot have been reused
		}
	}
	return max(len(kids), 1)
}

// children lists this process's children, from the children lists of its
// threads.
func children() []int {
	lists, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// serve answers one connection.
func (s *server) serve(conn *net.UnixConn) {
	defer conn.Close()
	line, fds, _, err := control.ReadFiles(conn)
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		control.CloseFds(fds)
		_ = control.SendFiles(conn, Response{Error: fmt.Sprintf("decode request: %v", err)}, nil)
		return
	}
	switch req.Op {
	case OpSpawn:
		resp, pidfd := s.spawn(req, fds)
		var files []*os.File
		if pidfd != nil {
			files = append(files, pidfd)
			defer pidfd.Close()
		}
		_ = control.SendFiles(conn, resp, files)
	case OpHold:
		control.CloseFds(fds)
		s.hold(conn)
	default:
		control.CloseFds(fds)
		_ = control.SendFiles(conn, Response{Error: fmt.Sprintf("unknown op %q", req.Op)}, nil)
	}
}

// spawn forks the child req asks for, with fds as its descriptors 0..n-1,
// and returns its pid and a pidfd. fds are closed.
func (s *server) spawn(req Request, fds []int) (Response, *os.File) {
	defer control.CloseFds(fds)
	fail := func(err error) (Response, *os.File) { return Response{Error: err.Error()}, nil }
	if len(req.Args) == 0 {
		return fail(errors.New("spawn: no argv"))
	}
	if len(fds) > maxChildFds {
		return fail(fmt.Errorf("spawn: %d descriptors, at most %d", len(fds), maxChildFds))
	}
	for _, f := range req.CgroupProcsFiles {
		if filepath.Base(f) != "cgroup.procs" || !filepath.IsAbs(f) {
			return fail(fmt.Errorf("spawn: %q is not a cgroup.procs file", f))
		}
	}
	files := make([]uintptr, len(fds))
	for i, fd := range fds {
		files[i] = uintptr(fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return fail(errors.New(errExiting))
	}
	pidfd := -1
	// The child starts in the sealed binary's directory, entered before
	// its descriptors are rearranged, and runs the binary by its
	// relative name; the pod init takes that directory over (see
	// sealedexe.FromCwd).
	pid, err := syscall.ForkExec(sealedexe.Name, req.Args, &syscall.ProcAttr{
		Dir:   s.bin.ProcPath(),
		Env:   req.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			// Its own session: signals to the keeper's (or cubbyd's)
			// process group never reach it.
			Setsid:     true,
			Cloneflags: req.CloneFlags,
			PidFD:      &pidfd,
		},
	})
	if err != nil {
		return fail(fmt.Errorf("spawn %s: %w", req.Args[0], err))
	}
	s.spawned[pid] = true
	child := os.NewFile(uintptr(pidfd), "pidfd")
	for _, f := range req.CgroupProcsFiles {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0); err != nil {
			_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			child.Close()
			return fail(fmt.Errorf("join cgroup %s: %w", f, err))
		}
	}
	return Response{Pid: pid}, child
}

// maxHoldBytes bounds what a hold connection may send.
const maxHoldBytes = 64 << 10

// hold serves a hold connection until it closes.
func (s *server) hold(conn *net.UnixConn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = control.SendFiles(conn, Response{Error: errExiting}, nil)
		return
	}
	s.holds++
	s.released = false
	s.mu.Unlock()
	released := false
	defer func() {
		s.mu.Lock()
		s.holds--
		s.released = released
		s.mu.Unlock()
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
	if err := control.SendFiles(conn, Response{Pid: os.Getpid(), Children: s.childCount()}, nil); err != nil {
		return
	}
	// A hold carries one release at most: a peer that sends more than a
	// few of them is cut off, not buffered.
	dec := json.NewDecoder(io.LimitReader(conn, maxHoldBytes))
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			return // closed: a cubbyd that died unless it released first
		}
		if req.Op == OpRelease {
			released = true
			_ = control.SendFiles(conn, Response{Children: s.childCount()}, nil)
		}
	}
}

// childCount reaps what has exited and counts the children left.
func (s *server) childCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reapExited()
}
