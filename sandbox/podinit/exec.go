package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/containerinit"
	"cubby/sandbox/control"
	"cubby/sandbox/sealedexe"
)

// execProc is a process started in a running container by an exec session.
//
//	forked ──exec stage execve'd──▶ running ──reaped──▶ exited (exited closed)
type execProc struct {
	pid    int // in the pod's pid namespace
	exit   control.Exit
	exited chan struct{}
}

// execKillWait bounds the wait for a killed exec to be reaped.
const execKillWait = 10 * time.Second

// exec serves an exec session (see control.Session): it starts req.Args in
// running container req.ID, hands the caller the process's stdio, and
// answers with the exit once the process has been reaped. If the caller
// ends the session first, the process and everything it started are killed.
func (s *server) exec(conn *net.UnixConn, dec *json.Decoder, req control.Request) {
	fail := func(err error) { _ = control.SendFiles(conn, control.Response{Error: err.Error()}, nil) }
	if len(req.Args) == 0 || req.Args[0] == "" {
		fail(errors.New("exec: no command"))
		return
	}
	target, err := s.execTarget(req.ID)
	if err != nil {
		fail(err)
		return
	}
	defer target.close()
	base := target.spec
	if base == nil || base.Process == nil {
		fail(fmt.Errorf("exec in %q: no process in its spec", req.ID))
		return
	}
	spec := *base
	process := *base.Process
	process.Args = req.Args
	process.Terminal = req.Tty
	spec.Process = &process

	io, err := newExecIO(req, target.hostPid)
	if err != nil {
		fail(fmt.Errorf("exec in %q: %w", req.ID, err))
		return
	}
	defer io.closeChild()

	e := &execProc{exited: make(chan struct{})}
	// The reaper must not reap the child before it is registered: it waits
	// on reapMu, held from before the fork until the registration.
	s.reapMu.RLock()
	var once sync.Once
	release := func() { once.Do(s.reapMu.RUnlock) }
	_, err = containerinit.Exec(containerinit.ExecOptions{
		ID:               req.ID,
		Spec:             &spec,
		Seccomp:          target.seccomp,
		PID:              target.pidNS,
		Join:             target.join,
		Binary:           s.bin,
		Stdin:            io.child[0],
		Stdout:           io.child[1],
		Stderr:           io.child[2],
		Setctty:          req.Tty,
		CgroupProcsFiles: req.CgroupProcsFiles,
		Forked: func(pid int) {
			e.pid = pid
			s.mu.Lock()
			s.execs[pid] = e
			s.mu.Unlock()
			release()
		},
	})
	release()
	io.closeChild()
	if err != nil {
		io.closeParent()
		fail(err)
		return
	}
	err = control.SendFiles(conn, control.Response{Pid: e.pid, Files: io.names}, io.parent)
	io.closeParent()
	if err != nil {
		s.killExec(e)
		return
	}

	ended := make(chan struct{})
	go func() {
		var x json.RawMessage
		_ = dec.Decode(&x) // returns at EOF: the caller ended the session
		close(ended)
	}()
	select {
	case <-e.exited:
	case <-ended:
		s.killExec(e)
	}
	exit := e.exit
	_ = json.NewEncoder(conn).Encode(control.Response{Exit: &exit})
}

// sealedBinary returns the sealed copy of cubby-pod that the init and
// exec stages run from (see sealedexe): the one this pod init runs from,
// which the keeper starts it in as its working directory, so that every
// pod of the node shares one copy; a pod init started otherwise makes a
// copy of its own. Called before the pod init leaves its first working
// directory.
func sealedBinary() (*sealedexe.Dir, error) {
	if d, err := sealedexe.FromCwd(); err == nil {
		return d, nil
	}
	d, err := sealedexe.Seal("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("sealed copy of cubby-pod: %w", err)
	}
	return d, nil
}

// killExec kills exec e with every process it started, and waits (bounded)
// until it is reaped.
func (s *server) killExec(e *execProc) {
	killTree(e.pid)
	select {
	case <-e.exited:
	case <-time.After(execKillWait):
	}
}

// execTarget is what an exec takes from its running container: the parts
// of its spec and its seccomp filter read at start, and the namespaces it
// must join: the mount namespace always, and every other one that is not
// the pod init's own. The forking thread enters all of them, the pid
// namespace last (see containerinit.Exec).
type execTarget struct {
	hostPid int
	spec    *specs.Spec
	seccomp *containerinit.SeccompFilter
	pidNS   *os.File // nil when it is the pod init's
	join    []containerinit.Namespace
}

func (t *execTarget) close() {
	if t.pidNS != nil {
		t.pidNS.Close()
	}
	for _, ns := range t.join {
		ns.File.Close()
	}
}

// execTarget opens the namespaces an exec into running container id joins.
func (s *server) execTarget(id string) (_ *execTarget, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q is not running", id)
	}
	if _, running := s.byPid[c.pid]; !running {
		return nil, fmt.Errorf("container %q is not running", id)
	}
	t := &execTarget{hostPid: c.hostPid, spec: c.execSpec, seccomp: c.execSeccomp}
	// Opened under s.mu: the reaper cannot free c's pid meanwhile, so the
	// /proc entry is c's (or gone, if c is a zombie).
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	for _, typ := range []specs.LinuxNamespaceType{specs.CgroupNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.MountNamespace} {
		name := nsProcName(typ)
		path := fmt.Sprintf("/proc/%d/ns/%s", c.hostPid, name)
		if own, ok := s.ownNS[name]; ok && typ != specs.MountNamespace {
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				return nil, fmt.Errorf("container %q is not running: %w", id, err)
			}
			if st.Dev == own.Dev && st.Ino == own.Ino {
				continue
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("container %q is not running: %w", id, err)
		}
		if typ == specs.PIDNamespace {
			t.pidNS = f
			continue
		}
		t.join = append(t.join, containerinit.Namespace{Type: typ, File: f})
	}
	return t, nil
}

func nsProcName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	default:
		return string(t)
	}
}

// nsID identifies a namespace: the device and inode of its nsfs file.
type nsID struct{ Dev, Ino uint64 }

// ownNamespaces records the pod init's own namespaces, read once on the
// thread that calls it before any thread of the process enters another
// one: execTarget compares a container's with them, and /proc/self/ns
// would show whatever the main thread was left in.
func ownNamespaces() (map[string]nsID, error) {
	own := map[string]nsID{}
	for _, name := range []string{"cgroup", "ipc", "uts", "net", "pid"} {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/"+name, &st); err != nil {
			return nil, fmt.Errorf("own %s namespace: %w", name, err)
		}
		own[name] = nsID{Dev: st.Dev, Ino: st.Ino}
	}
	return own, nil
}

// execIO are the stdio descriptors of an exec: the child's ends and the
// ends passed to the caller, with their names.
type execIO struct {
	child  [3]*os.File // nil entries are /dev/null
	parent []*os.File
	names  []string
}

func newExecIO(req control.Request, hostPid int) (*execIO, error) {
	io := &execIO{}
	if req.Tty {
		master, slave, err := openContainerPty(hostPid)
		if err != nil {
			return nil, err
		}
		io.child = [3]*os.File{slave, slave, slave}
		io.parent, io.names = []*os.File{master}, []string{control.FileTerminal}
		return io, nil
	}
	type stream struct {
		want     bool
		name     string
		childEnd int // 0: the read end goes to the child (stdin)
	}
	for i, st := range []stream{{req.Stdin, control.FileStdin, 0}, {req.Stdout, control.FileStdout, 1}, {req.Stderr, control.FileStderr, 1}} {
		if !st.want {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			io.closeChild()
			io.closeParent()
			return nil, err
		}
		if st.childEnd == 0 {
			io.child[i] = r
			io.parent = append(io.parent, w)
		} else {
			io.child[i] = w
			io.parent = append(io.parent, r)
		}
		io.names = append(io.names, st.name)
	}
	return io, nil
}

func (io *execIO) closeChild() {
	seen := map[*os.File]bool{}
	for i, f := range io.child {
		if f != nil && !seen[f] {
			f.Close()
			seen[f] = true
		}
		io.child[i] = nil
	}
}

func (io *execIO) closeParent() {
	for _, f := range io.parent {
		f.Close()
	}
	io.parent = nil
}

// openPty opens a new pseudo-terminal pair of the host's devpts.
func openPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	return ptyPair(m)
}

// openContainerPty opens a pseudo-terminal pair of the devpts instance of
// the container whose host pid is hostPid, so that inside the container the
// terminal is /dev/pts/N (ttyname works). The path is resolved inside the
// container's root, and the result must be a devpts ptmx; otherwise (no
// devpts of its own) the host's devpts is used.
func openContainerPty(hostPid int) (master, slave *os.File, err error) {
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", hostPid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return openPty()
	}
	defer unix.Close(root)
	m, err := unix.Openat2(root, "dev/pts/ptmx", &unix.OpenHow{
		Flags:   unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return openPty()
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Fstat(m, &st) != nil || unix.Fstatfs(m, &fs) != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 || fs.Type != unix.DEVPTS_SUPER_MAGIC {
		unix.Close(m)
		return openPty()
	}
	return ptyPair(m)
}

// ptyPair unlocks the terminal master m and opens its peer.
func ptyPair(m int) (master, slave *os.File, err error) {
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock terminal: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open terminal peer: %w", errno)
	}
	return os.NewFile(uintptr(m), "pty-master"), os.NewFile(sfd, "pty-slave"), nil
}
