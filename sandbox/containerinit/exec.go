package containerinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecArg is the argv[1] that makes cubby-pod's main call ExecMain.
const ExecArg = "exec"

// DefaultExecArgs is the argv used for the exec stage when
// ExecOptions.InitArgs is empty.
func DefaultExecArgs() []string { return []string{"cubby-pod", ExecArg} }

// Namespace is a namespace of a running container, open as a file.
type Namespace struct {
	Type specs.LinuxNamespaceType
	File *os.File
}

// namespaceFd is a namespace the exec stage joins: its type and the fd the
// child inherited it as.
type namespaceFd struct {
	Type specs.LinuxNamespaceType `json:"type"`
	Fd   int                      `json:"fd"`
}

// ExecOptions describe one process to run inside a running container. Exec
// runs inside cubby-pod.
type ExecOptions struct {
	// ID names the container in errors; optional.
	ID string
	// Spec is the container's spec with Process replaced by the exec's
	// process (args, terminal); Root and mounts are not used.
	Spec *specs.Spec
	// Seccomp is the container's compiled seccomp filter (see
	// ReadSeccompFilter), installed last before execve as for the
	// container's own process; required when the spec has a profile.
	Seccomp *SeccompFilter
	// PID is the container's pid namespace: the exec stage is forked into
	// it from a thread that joined it. Nil keeps cubby-pod's.
	PID *os.File
	// Join are the container's other namespaces the exec stage enters
	// before any setup (its mount namespace at least).
	Join []Namespace
	// InitPath and InitArgs are the binary re-executed as the exec stage
	// (default DefaultInitPath, DefaultExecArgs()).
	InitPath string
	InitArgs []string
	// Stdin, Stdout and Stderr become fds 0, 1 and 2; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Setctty makes Stdin, a terminal, the process's controlling terminal.
	Setctty bool
	// CgroupProcsFiles are the container's cgroup.procs files; the child's
	// pid is written into them before it runs any setup.
	CgroupProcsFiles []string
	// Forked, if set, is called with the child's pid right after the fork,
	// before the child is let go: the caller registers it for its reaper.
	Forked func(pid int)
}

// Exec starts a process inside a running container and waits until it has
// execve'd the command (its pid, in the caller's pid namespace, is
// returned) or failed (an *InitError, wrapped). Like Start, it never waits
// for the child; a non-zero pid means the child was forked.
//
// The child is born in the container's pid namespace (forked from a thread
// that joined it) and, as the exec stage (ExecMain), enters the mount and
// other namespaces itself, then runs the same process steps as the
// container init: rlimits, no_new_privs, cwd, fds, capabilities, user,
// seccomp, execve.
func Exec(opts ExecOptions) (pid int, err error) {
	if opts.Spec == nil || opts.Spec.Process == nil || len(opts.Spec.Process.Args) == 0 || opts.Spec.Process.Args[0] == "" {
		return 0, fmt.Errorf("exec in container %q: %w: no command", opts.ID, ErrInvalidSpec)
	}
	initPath := opts.InitPath
	if initPath == "" {
		initPath = DefaultInitPath
	}
	initArgs := opts.InitArgs
	if len(initArgs) == 0 {
		initArgs = DefaultExecArgs()
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("exec in container %q: create sync socketpair: %w", opts.ID, err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "containerinit-exec-parent")
	childSock := os.NewFile(uintptr(fds[1]), "containerinit-exec-child")
	defer parentSock.Close()

	stdio, closeStdio, err := openStdio(opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		childSock.Close()
		return 0, fmt.Errorf("exec in container %q: %w", opts.ID, err)
	}
	files := append(stdio, childSock) // childSock becomes syncFd
	join := make([]namespaceFd, 0, len(opts.Join))
	for _, ns := range opts.Join {
		join = append(join, namespaceFd{Type: ns.Type, Fd: len(files)})
		files = append(files, ns.File)
	}
	attr := &os.ProcAttr{
		// The stage lives for a millisecond: no collector, one P.
		Env:   []string{"GOGC=off", "GOMAXPROCS=1"},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setsid:  true,
			Setctty: opts.Setctty,
			Ctty:    0,
		},
	}
	proc, err := forkInto(opts.PID, initPath, initArgs, attr, opts.Forked)
	closeStdio()
	childSock.Close()
	if err != nil {
		return 0, fmt.Errorf("exec in container %q: start exec stage: %w", opts.ID, err)
	}
	defer proc.Release()

	p := newSyncPipe(parentSock)
	if err := runExecParent(p, proc.Pid, opts.Spec, opts.Seccomp, join, opts.CgroupProcsFiles); err != nil {
		_ = proc.Kill()
		return proc.Pid, fmt.Errorf("exec in container %q: %w", opts.ID, err)
	}
	return proc.Pid, nil
}

// runExecParent is runParent with the namespaces to join in the spec message.
func runExecParent(p *syncPipe, pid int, spec *specs.Spec, filter *SeccompFilter, join []namespaceFd, cgroupProcs []string) error {
	w, err := toExecProcess(spec)
	if err != nil {
		return err
	}
	if err := p.send(message{Type: msgSpec, Exec: w, Seccomp: filter, Join: join}); err != nil {
		return err
	}
	return finishParent(p, pid, cgroupProcs, nil)
}

// forkInto starts the process from a fresh OS thread that joined pidNS
// first, so that the child is born in that pid namespace. setns of a pid
// namespace changes only the namespace of the thread's future children, and
// only for that thread; the thread is never given back to the Go scheduler
// (the goroutine ends locked, so the runtime retires the thread).
func forkInto(pidNS *os.File, path string, args []string, attr *os.ProcAttr, forked func(int)) (*os.Process, error) {
	if pidNS == nil {
		proc, err := os.StartProcess(path, args, attr)
		if err == nil && forked != nil {
			forked(proc.Pid)
		}
		return proc, err
	}
	type result struct {
		proc *os.Process
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(pidNS.Fd()), unix.CLONE_NEWPID); err != nil {
			ch <- result{err: fmt.Errorf("join pid namespace: %w", err)}
			return
		}
		proc, err := os.StartProcess(path, args, attr)
		if err == nil && forked != nil {
			forked(proc.Pid)
		}
		ch <- result{proc, err}
	}()
	r := <-ch
	return r.proc, r.err
}

// ExecMain is the exec stage. cubby-pod's main calls it when os.Args[1] ==
// ExecArg, in the child that Exec forked. It never returns: it execve's the
// command inside the container, or reports the failed step and exits 1.
func ExecMain() {
	// setns of the mount namespace, capset and the execve all act on
	// this thread: it is never unlocked.
	runtime.LockOSThread()
	unix.CloseOnExec(syncFd)
	sock := os.NewFile(syncFd, "containerinit-exec-sync")
	ip := &initProcess{sync: newSyncPipe(sock)}
	step, err := ip.runExec()
	_ = ip.sync.send(message{Type: msgError, Error: newInitError(step, err)})
	os.Exit(1)
}

func (ip *initProcess) runExec() (string, error) {
	m, err := ip.sync.expectLite(msgSpec)
	if err != nil {
		return "receive spec", err
	}
	if _, err := ip.sync.expectLite(msgCgroupJoined); err != nil {
		return "receive spec", err
	}
	if m.Exec == nil {
		return "receive spec", errors.New("no exec process in the spec message")
	}
	if ip.spec, err = m.Exec.spec(); err != nil {
		return "receive spec", err
	}
	if m.Exec.Seccomp && m.Seccomp == nil {
		// Never run an exec unconfined in a confined container.
		return "receive spec", fmt.Errorf("%w: the container has a seccomp profile but no compiled filter came", ErrInvalidSpec)
	}
	ip.seccomp = m.Seccomp
	steps := append([]initStep{
		{"validate spec", ip.parseSpec},
		{"join namespaces", func() error { return joinNamespaces(m.Join) }},
	}, ip.processSteps()...)
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return s.name, err
		}
	}
	return "exec", fmt.Errorf("execve of %q returned", ip.exe)
}

// nsCloneFlag maps a namespace type to its setns flag.
var nsCloneFlag = map[specs.LinuxNamespaceType]int{
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// joinNamespaces enters the container's namespaces on this (locked) thread,
// the mount namespace last. The process first stops being dumpable, so that
// nothing in the container can ptrace it or open its /proc/<pid>/exe (the
// host's cubby-pod) while it is still privileged; execve resets that.
//
// A Go process is multi-threaded: setns of a mount namespace needs a
// thread with its own filesystem context, hence the unshare(CLONE_FS) of
// this thread first. The other threads stay behind; execve ends them.
func joinNamespaces(join []namespaceFd) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("set non-dumpable: %w", err)
	}
	var mnt *namespaceFd
	for i := range join {
		ns := join[i]
		flag, ok := nsCloneFlag[ns.Type]
		if !ok {
			return fmt.Errorf("join %s namespace: %w", ns.Type, errors.ErrUnsupported)
		}
		if ns.Type == specs.MountNamespace {
			mnt = &join[i]
			continue
		}
		if err := unix.Setns(ns.Fd, flag); err != nil {
			return fmt.Errorf("join %s namespace: %w", ns.Type, err)
		}
		unix.Close(ns.Fd)
	}
	if mnt == nil {
		return errors.New("no mount namespace to join")
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	if err := unix.Setns(mnt.Fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mnt namespace: %w", err)
	}
	unix.Close(mnt.Fd)
	return nil
}

// ExecSpec returns the part of a container's spec that the exec stage
// uses: its process, root and seccomp filter. Exec sends exactly that.
func ExecSpec(spec *specs.Spec) *specs.Spec {
	if spec == nil {
		return nil
	}
	es := &specs.Spec{Version: spec.Version, Process: spec.Process, Root: spec.Root}
	if spec.Linux != nil {
		es.Linux = &specs.Linux{Seccomp: spec.Linux.Seccomp}
	}
	return es
}

// execProcess is the exec stage's spec on the wire: flat. Decoding the
// specs.Spec type tree in a fresh process costs over a millisecond of
// reflection (measured: 1.4 ms cold against 30 µs warm), which an exec
// probe pays every time; this form costs a tenth of that. The seccomp
// profile is not sent at all: its compiled filter is. A field of
// the spec that a process step starts to read must be carried here too
// (TestExecProcessRoundTrip compares the process before and after).
type execProcess struct {
	Args           []string     `json:"args"`
	Env            []string     `json:"env,omitempty"`
	Cwd            string       `json:"cwd,omitempty"`
	Terminal       bool         `json:"terminal,omitempty"`
	UID            uint32       `json:"uid"`
	GID            uint32       `json:"gid"`
	AdditionalGids []uint32     `json:"gids,omitempty"`
	Umask          *uint32      `json:"umask,omitempty"`
	Caps           *[5][]string `json:"caps,omitempty"` // bounding, effective, permitted, inheritable, ambient
	Rlimits        []execRlimit `json:"rlimits,omitempty"`
	NoNewPrivs     bool         `json:"nnp,omitempty"`
	OOMScoreAdj    *int         `json:"oom,omitempty"`
	Root           string       `json:"root"`
	// Seccomp tells that the container has a seccomp profile. The stage
	// never reads the profile itself: it installs the compiled filter
	// that comes beside this in the spec message, and refuses to run
	// without one.
	Seccomp bool `json:"seccomp,omitempty"`
}

type execRlimit struct {
	Type string `json:"t"`
	Hard uint64 `json:"h"`
	Soft uint64 `json:"s"`
}

// toExecProcess flattens spec (validated: it has a process and a root).
func toExecProcess(spec *specs.Spec) (*execProcess, error) {
	p := spec.Process
	w := &execProcess{
		Args:           p.Args,
		Env:            p.Env,
		Cwd:            p.Cwd,
		Terminal:       p.Terminal,
		UID:            p.User.UID,
		GID:            p.User.GID,
		AdditionalGids: p.User.AdditionalGids,
		Umask:          p.User.Umask,
		NoNewPrivs:     p.NoNewPrivileges,
		OOMScoreAdj:    p.OOMScoreAdj,
	}
	if spec.Root != nil {
		w.Root = spec.Root.Path
	}
	if c := p.Capabilities; c != nil {
		w.Caps = &[5][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient}
	}
	for _, r := range p.Rlimits {
		w.Rlimits = append(w.Rlimits, execRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
	}
	w.Seccomp = spec.Linux != nil && spec.Linux.Seccomp != nil
	return w, nil
}

// spec rebuilds the OCI spec the process steps read.
func (w *execProcess) spec() (*specs.Spec, error) {
	p := &specs.Process{
		Args:            w.Args,
		Env:             w.Env,
		Cwd:             w.Cwd,
		Terminal:        w.Terminal,
		User:            specs.User{UID: w.UID, GID: w.GID, AdditionalGids: w.AdditionalGids, Umask: w.Umask},
		NoNewPrivileges: w.NoNewPrivs,
		OOMScoreAdj:     w.OOMScoreAdj,
	}
	if w.Caps != nil {
		p.Capabilities = &specs.LinuxCapabilities{Bounding: w.Caps[0], Effective: w.Caps[1], Permitted: w.Caps[2], Inheritable: w.Caps[3], Ambient: w.Caps[4]}
	}
	for _, r := range w.Rlimits {
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
	}
	s := &specs.Spec{Process: p, Root: &specs.Root{Path: w.Root}, Linux: &specs.Linux{}}
	return s, nil
}
