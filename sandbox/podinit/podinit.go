package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"cubby/sandbox/containerinit"
	"cubby/sandbox/control"
	"cubby/sandbox/sealedexe"
)

// Config is what cubbyd tells a new pod init on its command line.
type Config struct {
	ID       string // pod sandbox id
	Dir      string // pod directory under cubbyd's state dir
	Hostname string // set in the pod's UTS namespace; empty keeps the inherited one
	// Sysctls ("key=value") are set in the pod init's namespaces before it
	// reports ready.
	Sysctls []string
	// Loopback brings up lo: set for a pod born in a network namespace of
	// its own (no loopback CNI plugin runs).
	Loopback bool
	// PidNamespace, when set, gives the pod a pid namespace of its own,
	// pinned at this path: the pod init, in the node's, forks the pod's
	// PID 1 (see pid1.go) and its containers into it.
	PidNamespace string
	// ReadyFD, when > 0, is written "ok\n" and closed once the control
	// socket accepts connections, or gets the error text if setup failed.
	ReadyFD int
}

// Run is the main of cubby-pod. It returns when the pod is shut down. It
// expects to be called on the process's main thread, locked, and keeps it
// locked: no other goroutine ever runs there. Goroutines that enter a
// container's namespaces (exec) end on their locked threads, which the Go
// runtime retires, except the main thread, which it parks: one of them
// landing there would leave the main thread, and so /proc/self/ns/* (what
// execTarget compares a container's namespaces with), in the container's
// namespaces. forkPid1 also needs this thread (see there).
func Run(cfg Config) error {
	var ready *os.File
	if cfg.ReadyFD > 0 {
		ready = os.NewFile(uintptr(cfg.ReadyFD), "ready")
	}
	err := run(cfg, func() error {
		if ready == nil {
			return nil
		}
		_, err := ready.WriteString("ok\n")
		ready.Close()
		ready = nil
		if err != nil {
			// Nobody waits for the report (EPIPE): the start was
			// given up, and a pod init that nobody knows of must not
			// run on.
			return fmt.Errorf("report ready: %w", err)
		}
		return nil
	})
	if err != nil && ready != nil {
		_, _ = ready.WriteString(err.Error() + "\n")
		ready.Close()
	}
	return err
}

func run(cfg Config, signalReady func() error) error {
	bin, err := sealedBinary()
	if err != nil {
		return err
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	if cfg.Loopback {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	for _, kv := range cfg.Sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("sysctl %q: want key=value", kv)
		}
		if err := containerinit.WriteSysctl(k, v); err != nil {
			return err
		}
	}
	// The containers are its children and it reaps them; being a child
	// subreaper also brings it what they leave behind when the pod shares
	// the node's pid namespace (in a pod pid namespace, orphans go to
	// the pod's PID 1).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	signal.Ignore(unix.SIGHUP, unix.SIGPIPE)

	// The pod directory is the working directory: the control socket is
	// bound by a relative name, whatever the length of the state path.
	// No container can see the pod init, so none can see its cwd.
	if err := os.Chdir(cfg.Dir); err != nil {
		return fmt.Errorf("enter pod directory: %w", err)
	}
	own, err := ownNamespaces()
	if err != nil {
		return err
	}
	s := &server{
		dir:        cfg.Dir,
		ownNS:      own,
		bin:        bin,
		containers: map[string]*container{},
		byPid:      map[int]*container{},
		execs:      map[int]*execProc{},
		done:       make(chan struct{}),
	}
	if cfg.PidNamespace != "" {
		p, err := forkPid1(cfg)
		if err != nil {
			return err
		}
		defer p.close()
		s.pid1 = p
	}
	sock := control.SocketPath(cfg.Dir)
	ln, err := control.Listen()
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := signalReady(); err != nil {
		ln.Close()
		_ = os.Remove(sock)
		return err
	}
	go s.serve(ln)

	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGCHLD {
				s.reap()
				if !s.pid1Exited() {
					continue
				}
			}
			s.shutdown()
			s.doneOnce.Do(func() { close(s.done) })
		case <-s.done:
		}
		if s.isDone() {
			ln.Close()
			_ = os.Remove(sock)
			if s.pid1Exited() {
				return fmt.Errorf("the pod's PID 1 (pid %d) ended: %s", s.pid1.pid, describeExit(*s.pid1Exit))
			}
			return nil
		}
	}
}

// forkPid1 starts the pod's PID 1 (see pid1.go) from a thread that never
// ends: PR_SET_PDEATHSIG fires when the forking thread ends, not the
// process. The process's main thread is one (the Go runtime parks it
// rather than let it exit); cubby-pod's main goroutine is locked to it
// from init and stays locked for the pod init's whole life (see Run). Run
// on another thread (tests), the goroutine is locked to it for good
// instead, which costs the process a thread.
func forkPid1(cfg Config) (*pid1, error) {
	if unix.Gettid() != unix.Getpid() {
		runtime.LockOSThread() // never unlocked, see above
	}
	return startPid1(cfg.Dir, cfg.PidNamespace)
}

// server is the pod init's state: its containers, by id and by pid.
type server struct {
	dir string
	// pid1 is the PID 1 of the pod's own pid namespace, nil when the pod
	// shares the node's; pid1Exit is set once it has been reaped.
	pid1     *pid1
	pid1Exit *control.Exit
	bin      *sealedexe.Dir // what the init and exec stages run
	// ownNS are the pod init's own namespaces, which an exec need not
	// join (see ownNamespaces).
	ownNS map[string]nsID

	mu         sync.Mutex
	containers map[string]*container
	byPid      map[int]*container
	execs      map[int]*execProc // running execs by pid
	stopping   bool
	// reapMu is held for writing while the reaper collects exits, and for
	// reading from before an exec's fork until its pid is registered.
	reapMu   sync.RWMutex
	done     chan struct{}
	doneOnce sync.Once
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
	dec := json.NewDecoder(conn)
	if err := dec.Decode(&req); err != nil {
		return
	}
	switch req.Op {
	case control.OpExec:
		s.exec(conn, dec, req)
		return
	case control.OpAttach:
		s.attach(conn, dec, req)
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
		resp.Containers = s.count()
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
	case control.OpForget:
		err = s.forget(req.ID)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}
