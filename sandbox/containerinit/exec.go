package containerinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/sealedexe"
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
	// PID is the container's pid namespace; nil keeps cubby-pod's.
	PID *os.File
	// Join are the container's other namespaces: its mount namespace at
	// least, and each of net, ipc, uts and cgroup that is not cubby-pod's.
	Join []Namespace
	// Binary is the sealed cubby-pod that the exec stage runs (required).
	Binary *sealedexe.Dir
	// InitArgs is the exec stage's argv (default DefaultExecArgs()).
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
// The child is born in every namespace of the container (see forkInto):
// from its first instruction it has the container's root, no descriptor
// but its stdio and the sync socket, and the sealed binary's directory as
// its working directory. As the exec stage (ExecMain) it runs the same
// process steps as the container init: rlimits, no_new_privs, cwd, fds,
// capabilities, user, seccomp, execve.
func Exec(opts ExecOptions) (pid int, err error) {
	if opts.Spec == nil || opts.Spec.Process == nil || len(opts.Spec.Process.Args) == 0 || opts.Spec.Process.Args[0] == "" {
		return 0, fmt.Errorf("exec in container %q: %w: no command", opts.ID, ErrInvalidSpec)
	}
	if opts.Binary == nil {
		return 0, fmt.Errorf("exec in container %q: %w: no sealed binary to run the exec stage from", opts.ID, ErrInvalidSpec)
	}
	if !slices.ContainsFunc(opts.Join, func(ns Namespace) bool { return ns.Type == specs.MountNamespace }) {
		return 0, fmt.Errorf("exec in container %q: %w: no mount namespace to join", opts.ID, ErrInvalidSpec)
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
	attr := &syscall.ProcAttr{
		// The stage lives for a millisecond: no collector, one P.
		Env:   []string{"GOGC=off", "GOMAXPROCS=1"},
		Files: make([]uintptr, len(files)),
		Sys: &syscall.SysProcAttr{
			Setsid:  true,
			Setctty: opts.Setctty,
			Ctty:    0,
		},
	}
	for i, f := range files {
		attr.Files[i] = f.Fd()
	}
	bounding, err := stageBounding(opts.Spec)
	if err != nil {
		closeStdio()
		childSock.Close()
		return 0, fmt.Errorf("exec in container %q: %w", opts.ID, err)
	}
	pid, err = forkInto(opts.Join, opts.PID, bounding, opts.Binary, initArgs, attr)
	runtime.KeepAlive(files)
	closeStdio()
	childSock.Close()
	if err != nil {
		return 0, fmt.Errorf("exec in container %q: start exec stage: %w", opts.ID, err)
	}
	// The caller has not let its reaper at the child yet (Forked comes
	// next): the pid is still the child's, and the pidfd that FindProcess
	// opens (it always succeeds on Linux) is the child's.
	proc, _ := os.FindProcess(pid)
	if opts.Forked != nil {
		opts.Forked(pid)
	}
	defer proc.Release()

	p := newSyncPipe(parentSock)
	if err := runExecParent(p, proc.Pid, opts.Spec, opts.Seccomp, opts.CgroupProcsFiles); err != nil {
		_ = proc.Kill()
		return proc.Pid, fmt.Errorf("exec in container %q: %w", opts.ID, err)
	}
	return proc.Pid, nil
}

// runExecParent is runParent with the flat exec process in the spec message.
func runExecParent(p *syncPipe, pid int, spec *specs.Spec, filter *SeccompFilter, cgroupProcs []string) error {
	w, err := toExecProcess(spec)
	if err != nil {
		return err
	}
	if err := p.send(message{Type: msgSpec, Exec: w, Seccomp: filter}); err != nil {
		return err
	}
	return finishParent(p, pid, cgroupProcs, nil)
}

// forkInto starts the exec stage from a fresh OS thread that first entered
// every namespace of the container, so that the child is born in them:
// it is never, not for an instruction, a process of the container's pid
// namespace with the host's root, working directory or descriptors (a
// container with CAP_SYS_PTRACE opens /proc/<pid>/root, cwd and fd/* of
// whatever appears in it). The order is runc's: the mount namespace before
// the pid namespace. It returns the child's pid.
//
// The thread narrows its capability bounding set to what the stage needs
// (stageBounding; the child inherits it across its execve), takes a
// descriptor table of its own holding only what the child gets and what
// the thread itself still uses (isolateFds: between its fork and its
// execve, a child has every descriptor of its parent's table, close-on-exec
// or not), unshares its filesystem context (setns of a mount namespace
// needs one of its own in a multi-threaded process), joins net, ipc, uts
// and cgroup, then the mount namespace (which sets its root and working
// directory to the container's root), then the pid namespace (which only
// changes where its children are born). It then enters the sealed
// binary's directory by its fd, closes what only it used, and execve's the
// binary by its relative name: no path is resolved in the container's
// mount namespace, where a /proc or anything else is the container's to
// forge.
//
// The thread is never given back to the Go scheduler (the goroutine ends
// locked, so the runtime retires the thread, and its descriptor table with
// it). It forks with syscall.ForkExec, which makes no pidfd: one made
// there would be a number in the thread's own table; the caller makes its
// own with the pid.
func forkInto(join []Namespace, pidNS *os.File, bounding capSets, bin *sealedexe.Dir, args []string, attr *syscall.ProcAttr) (int, error) {
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		pid, err := forkFromThread(join, pidNS, bounding, bin, args, attr)
		ch <- result{pid, err}
	}()
	r := <-ch
	return r.pid, r.err
}

// forkFromThread is forkInto's thread.
func forkFromThread(join []Namespace, pidNS *os.File, bounding capSets, bin *sealedexe.Dir, args []string, attr *syscall.ProcAttr) (int, error) {
	// Before the namespaces: it reads /proc, which must be the host's.
	if err := dropBounding(bounding); err != nil {
		return 0, err
	}
	used := []int{bin.Fd()}
	for _, ns := range join {
		used = append(used, int(ns.File.Fd()))
	}
	if pidNS != nil {
		used = append(used, int(pidNS.Fd()))
	}
	keep := append([]int{}, used...)
	for _, fd := range attr.Files {
		keep = append(keep, int(fd))
	}
	if err := isolateFds(keep); err != nil {
		return 0, err
	}
	if err := enterNamespaces(join, pidNS); err != nil {
		return 0, err
	}
	if err := unix.Fchdir(bin.Fd()); err != nil {
		return 0, fmt.Errorf("enter sealed binary directory: %w", err)
	}
	for _, fd := range used {
		if !slices.Contains(attr.Files, uintptr(fd)) {
			unix.Close(fd) // this thread's copy only
		}
	}
	pid, err := syscall.ForkExec(sealedexe.Name, args, attr)
	// This table's copies of the child's descriptors would otherwise
	// live until the thread is gone: the sync socket's EOF must come at
	// the child's execve.
	for _, fd := range attr.Files {
		unix.Close(int(fd))
	}
	return pid, err
}

// isolateFds gives the calling thread a descriptor table of its own and
// closes every descriptor in it but keep. The process's table is
// untouched; the thread must never run other goroutines again.
func isolateFds(keep []int) error {
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		return fmt.Errorf("unshare descriptor table: %w", err)
	}
	keep = slices.Clone(keep)
	slices.Sort(keep)
	next := uint(0)
	for _, fd := range keep {
		if uint(fd) > next {
			if err := unix.CloseRange(next, uint(fd)-1, 0); err != nil {
				return fmt.Errorf("close descriptors: %w", err)
			}
		}
		next = uint(fd) + 1
	}
	if err := unix.CloseRange(next, ^uint(0), 0); err != nil {
		return fmt.Errorf("close descriptors: %w", err)
	}
	return nil
}

// stageExtraCaps are the capabilities the exec stage's process steps use
// beyond the container's own: the user switch, capset and the bounding
// set, raised rlimits and a lower oom score, the working directory
// whatever its permissions. The steps drop them again (dropBounding).
var stageExtraCaps = []string{"CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SYS_RESOURCE", "CAP_DAC_OVERRIDE"}

// stageBounding is the exec stage's bounding set, and with it every
// capability it can hold: the container's bounding set, stageExtraCaps,
// and CAP_SYS_ADMIN when it installs a seccomp filter without
// no_new_privs. A stage reached by ptrace (the kernel lets a tracer with
// CAP_SYS_PTRACE in the same user namespace in, dumpable or not) gives
// no more than that, not the pod init's full set.
func stageBounding(spec *specs.Spec) (capSets, error) {
	var names []string
	if c := spec.Process.Capabilities; c != nil {
		names = append(names, c.Bounding...)
	}
	names = append(names, stageExtraCaps...)
	if spec.Linux != nil && spec.Linux.Seccomp != nil && !spec.Process.NoNewPrivileges {
		names = append(names, "CAP_SYS_ADMIN")
	}
	caps, err := parseCaps(names)
	if err != nil {
		return nil, err
	}
	return capSets{capability.BOUNDING: caps}, nil
}

// nsCloneFlag maps a namespace type to its setns flag.
var nsCloneFlag = map[specs.LinuxNamespaceType]int{
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// enterNamespaces moves the calling (locked, never to be unlocked) thread
// into join, the mount namespace last of them, then into pidNS (if any).
func enterNamespaces(join []Namespace, pidNS *os.File) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	var mnt *os.File
	for _, ns := range join {
		flag, ok := nsCloneFlag[ns.Type]
		if !ok {
			return fmt.Errorf("join %s namespace: %w", ns.Type, errors.ErrUnsupported)
		}
		if ns.Type == specs.MountNamespace {
			mnt = ns.File
			continue
		}
		if err := unix.Setns(int(ns.File.Fd()), flag); err != nil {
			return fmt.Errorf("join %s namespace: %w", ns.Type, err)
		}
	}
	if err := unix.Setns(int(mnt.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mnt namespace: %w", err)
	}
	if pidNS != nil {
		if err := unix.Setns(int(pidNS.Fd()), unix.CLONE_NEWPID); err != nil {
			return fmt.Errorf("join pid namespace: %w", err)
		}
	}
	return nil
}

// ExecMain is the exec stage. cubby-pod's main calls it when os.Args[1] ==
// ExecArg, in the child that Exec forked. It never returns: it execve's the
// command inside the container, or reports the failed step and exits 1.
func ExecMain() {
	// capset and the execve act on this thread: it is never unlocked.
	runtime.LockOSThread()
	// Nothing in the container without CAP_SYS_PTRACE may ptrace this
	// process or open its /proc files while it is still privileged;
	// execve resets that.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		os.Exit(1)
	}
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
	}, ip.processSteps()...)
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return s.name, err
		}
	}
	return "exec", fmt.Errorf("execve of %q returned", ip.exe)
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
