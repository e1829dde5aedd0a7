package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
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

// Config is what cubbyd tells a new pod init on its command line.
type Config struct {
	ID       string // pod sandbox id
	Dir      string // pod directory under cubbyd's state dir
	Hostname string // set in the pod's UTS namespace; empty keeps the inherited one
	// ReadyFD, when > 0, is written "ok\n" and closed once the control
	// socket accepts connections, or gets the error text if setup failed.
	ReadyFD int
}

// ioDrainTimeout bounds how long an exit waits for the container's pipes to
// reach EOF (a process that escaped the pid namespace could hold them).
const ioDrainTimeout = 2 * time.Second

// shutdownTimeout bounds how long shutdown waits for killed containers.
const shutdownTimeout = 10 * time.Second

// Run is the main of cubby-pod. It returns when the pod is shut down.
func Run(cfg Config) error {
	ready := os.NewFile(uintptr(cfg.ReadyFD), "ready")
	err := run(cfg, func() {
		if ready != nil {
			_, _ = ready.WriteString("ok\n")
			ready.Close()
			ready = nil
		}
	})
	if err != nil && ready != nil {
		_, _ = ready.WriteString(err.Error() + "\n")
		ready.Close()
	}
	return err
}

func run(cfg Config, signalReady func()) error {
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	// PID 1 of the pod pid namespace reaps everything already; being a
	// subreaper too keeps that true when the pod shares the host pid ns.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	signal.Ignore(unix.SIGHUP, unix.SIGPIPE)

	// The pod directory is the working directory: the control socket is
	// bound by a relative name, whatever the length of the state path.
	if err := os.Chdir(cfg.Dir); err != nil {
		return fmt.Errorf("enter pod directory: %w", err)
	}
	sock := control.SocketPath(cfg.Dir)
	ln, err := control.Listen()
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	s := &server{
		dir:        cfg.Dir,
		containers: map[string]*container{},
		byPid:      map[int]*container{},
		done:       make(chan struct{}),
	}
	go s.serve(ln)
	signalReady()

	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGCHLD {
				s.reap()
				continue
			}
			s.shutdown()
			s.doneOnce.Do(func() { close(s.done) })
		case <-s.done:
		}
		if s.isDone() {
			ln.Close()
			_ = os.Remove(sock)
			return nil
		}
	}
}

// server is the pod init's state: its containers, by id and by pid.
type server struct {
	dir string

	mu         sync.Mutex
	containers map[string]*container
	byPid      map[int]*container
	stopping   bool
	done       chan struct{}
	doneOnce   sync.Once
}

// container is one started container process.
//
//	running ──reaped──▶ draining (pipes to EOF) ──▶ exited (exit.json written, exited closed)
type container struct {
	id      string
	pid     int // in the pod's pid namespace
	hostPid int
	logPath string
	logs    *crilog.File
	io      sync.WaitGroup

	logMu  sync.Mutex
	log    *os.File // nil once the container's output is drained
	exit   control.Exit
	exited chan struct{}
}

func (s *server) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *server) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if s.isDone() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go s.handle(conn)
	}
}

func (s *server) handle(conn *net.UnixConn) {
	defer conn.Close()
	var req control.Request
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		return
	}
	resp := s.dispatch(req)
	_ = json.NewEncoder(conn).Encode(resp)
	if req.Op == control.OpShutdown {
		s.doneOnce.Do(func() { close(s.done) })
	}
}

func (s *server) dispatch(req control.Request) control.Response {
	var resp control.Response
	var err error
	switch req.Op {
	case control.OpPing:
	case control.OpStart:
		resp.Pid, resp.StartedAt, err = s.start(req)
	case control.OpKill:
		err = s.kill(req.ID, syscall.Signal(req.Signal))
	case control.OpWait:
		resp.Exit, err = s.wait(req.ID)
	case control.OpShutdown:
		s.shutdown()
	case control.OpReopen:
		err = s.reopen(req.ID)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

// start starts container req.ID from its bundle and returns its host pid
// and the time its command was exec'd.
func (s *server) start(req control.Request) (hostPid int, startedAt int64, err error) {
	spec, err := readSpec(filepath.Join(req.Bundle, "config.json"))
	if err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(req.LogPath), 0o755); err != nil {
		return 0, 0, fmt.Errorf("create log directory for %q: %w", req.ID, err)
	}
	logf, err := openLog(req.LogPath)
	if err != nil {
		return 0, 0, fmt.Errorf("open log of %q: %w", req.ID, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return 0, 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		logf.Close()
		outR.Close()
		outW.Close()
		return 0, 0, err
	}

	// The lock is held across the start so that the reaper cannot see the
	// child's exit before the child is registered.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		logf.Close()
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return 0, 0, fmt.Errorf("pod is shutting down")
	}
	if c, ok := s.containers[req.ID]; ok {
		return 0, 0, fmt.Errorf("container %q already started as pid %d", req.ID, c.pid)
	}
	pid, err := containerinit.Start(containerinit.StartOptions{
		Spec:             spec,
		Stdout:           outW,
		Stderr:           errW,
		CgroupProcsFiles: req.CgroupProcsFiles,
	})
	outW.Close()
	errW.Close()
	if err != nil {
		logf.Close()
		outR.Close()
		errR.Close()
		return 0, 0, fmt.Errorf("start container %q: %w", req.ID, err)
	}
	// The reaper cannot have reaped the child yet (s.mu is held), so even a
	// container that already exited is still there to be found.
	startedAt = time.Now().UnixNano()
	hostPid, err = findHostPid(pid)
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		logf.Close()
		outR.Close()
		errR.Close()
		return 0, 0, fmt.Errorf("start container %q: %w", req.ID, err)
	}
	c := &container{id: req.ID, pid: pid, hostPid: hostPid, logPath: req.LogPath, log: logf, logs: crilog.NewFile(logf), exited: make(chan struct{})}
	c.io.Add(2)
	go copyLog(&c.io, c.logs, crilog.Stdout, outR)
	go copyLog(&c.io, c.logs, crilog.Stderr, errR)
	s.containers[req.ID] = c
	s.byPid[pid] = c
	return hostPid, startedAt, nil
}

// findHostPid translates nsPid, a child of this pod init as the pod's pid
// namespace numbers it, into its pid on the host, which is what cubbyd and
// the host's tools see. /proc here is the host's (the pod init shares the
// host mount namespace), so /proc/self is the pod init's host pid and the
// child is the one whose NSpid line names nsPid one level down.
func findHostPid(nsPid int) (int, error) {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, err
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
				if len(f) >= 3 && f[0] == "NSpid:" && f[2] == want {
					return strconv.Atoi(child)
				}
			}
		}
	}
	return 0, fmt.Errorf("no child has pid %d in the pod", nsPid)
}

// openLog opens a CRI log file for appending, creating it if needed.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o640)
}

// reopen points container id's log at a new file at its log path: kubelet
// renames the file to rotate it, then asks for the reopen.
func (s *server) reopen(id string) error {
	s.mu.Lock()
	c, ok := s.containers[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("container %q not found in pod", id)
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if c.log == nil {
		return fmt.Errorf("container %q is not running", id)
	}
	f, err := openLog(c.logPath)
	if err != nil {
		return fmt.Errorf("reopen log of %q: %w", id, err)
	}
	c.logs.SetWriter(f)
	c.log.Close()
	c.log = f
	return nil
}

func copyLog(wg *sync.WaitGroup, lf *crilog.File, stream string, r *os.File) {
	defer wg.Done()
	defer r.Close()
	_ = lf.Copy(stream, r)
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

// reap collects every exited child. Exits of containers are recorded; other
// children (re-parented orphans, failed init stages) are just reaped.
func (s *server) reap() {
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
		s.mu.Lock()
		c, ok := s.byPid[pid]
		delete(s.byPid, pid)
		s.mu.Unlock()
		if !ok {
			continue
		}
		e := control.Exit{Pid: pid, FinishedAt: finished}
		switch {
		case ws.Exited():
			e.Code = int32(ws.ExitStatus())
		case ws.Signaled():
			e.Signal = int(ws.Signal())
			e.Code = 128 + int32(ws.Signal())
		}
		go s.finish(c, e)
	}
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
