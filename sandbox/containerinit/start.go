package containerinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/sealedexe"
)

// Defaults for StartOptions.
const (
	DefaultInitPath = "/proc/self/exe"
	// InitArg is the argv[1] that makes cubby-pod's main call Main.
	InitArg = "init"
)

// DefaultInitArgs is the argv used for the init stage when
// StartOptions.InitArgs is empty.
func DefaultInitArgs() []string { return []string{"cubby-pod", InitArg} }

// StartOptions describes one container start. It runs inside cubby-pod.
type StartOptions struct {
	// ID is the container's id; optional. Start's errors do not repeat it:
	// its callers name the container.
	ID string
	// Spec is the complete OCI runtime spec for this container.
	Spec *specs.Spec
	// Seccomp is Spec.Linux.Seccomp compiled (see ReadSeccompFilter); it
	// is required when the spec has a seccomp profile.
	Seccomp *SeccompFilter
	// Binary is the sealed cubby-pod that the init stage runs; without
	// it, InitPath (default DefaultInitPath) is (tests only).
	Binary *sealedexe.Dir
	// InitPath is the binary to re-exec when there is no Binary.
	InitPath string
	// InitArgs is its argv, default DefaultInitArgs().
	InitArgs []string
	// Stdin, Stdout and Stderr become fds 0, 1 and 2 of the container;
	// nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// PidNamespace is the pod's pid namespace: a container that shares it
	// (the spec has no pid namespace) is forked into it from a thread
	// that joined it. Nil: the pod shares cubby-pod's (the node's).
	PidNamespace *os.File
	// CgroupProcsFiles are the cgroup.procs files the child's pid is written
	// into before it runs any setup: one per v1 hierarchy, or one on v2.
	CgroupProcsFiles []string
	// Terminal receives the master of the container's terminal when the
	// spec asks for one (Process.Terminal); it takes ownership. The
	// container's stdio is then that terminal, not Stdin/Stdout/Stderr.
	Terminal func(master *os.File)
}

// Start forks the init stage in a new mount namespace (and a new pid
// namespace unless the spec shares the pod's, see namespaceCloneFlags),
// puts it into its cgroups, lets it set up the container and waits until it
// has either execve'd the user command (the host pid of the container
// process is returned) or failed (the child's report is returned as an
// *InitError, wrapped).
//
// Start never waits for the child: the caller reaps it with its own wait4
// loop. Whenever the returned pid is non-zero the child was forked, even if
// err is non-nil (it then exits on its own or was killed), so the caller can
// attribute its exit status.
func Start(opts StartOptions) (pid int, err error) {
	if err := validateSpec(opts.Spec); err != nil {
		return 0, err
	}
	if err := validateSeccomp(opts.Spec, opts.Seccomp); err != nil {
		return 0, err
	}
	cloneFlags, err := namespaceCloneFlags(opts.Spec.Linux)
	if err != nil {
		return 0, err
	}
	initPath, dir := opts.InitPath, ""
	if initPath == "" {
		initPath = DefaultInitPath
	}
	if opts.Binary != nil {
		// Entered before the fork's descriptors are rearranged, and the
		// binary run by its relative name: the child's exe is the sealed
		// copy and its working directory is not the host's.
		initPath, dir = sealedexe.Name, opts.Binary.ProcPath()
	}
	initArgs := opts.InitArgs
	if len(initArgs) == 0 {
		initArgs = DefaultInitArgs()
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("create sync socketpair: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "containerinit-sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "containerinit-sync-child")
	defer parentSock.Close()

	stdio, closeStdio, err := openStdio(opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		childSock.Close()
		return 0, err
	}
	// A new pid namespace is made below the forking process's own, never
	// below one its thread joined (the kernel refuses that): a container
	// with a pid namespace of its own is forked from cubby-pod itself,
	// its namespace a sibling of the pod's.
	pod := opts.PidNamespace
	if cloneFlags&unix.CLONE_NEWPID != 0 {
		pod = nil
	}
	proc, err := inPidNamespace(pidNamespacePath(opts.Spec.Linux), pod, func() (*os.Process, error) {
		return os.StartProcess(initPath, initArgs, &os.ProcAttr{
			Dir:   dir,
			Files: append(stdio, childSock), // childSock becomes syncFd
			Sys: &syscall.SysProcAttr{
				Cloneflags: cloneFlags,
				// Its own session, so signals aimed at cubby-pod's process
				// group or terminal never reach the container.
				Setsid: true,
			},
		})
	})
	closeStdio()
	childSock.Close()
	if err != nil {
		return 0, fmt.Errorf("start init stage %q: %w", initPath, err)
	}
	// The caller reaps the child; the handle is only kept to signal it
	// through its pidfd, which cannot hit a recycled pid.
	defer proc.Release()

	// Read with recvmsg: a terminal master comes with a message.
	fdr := &fdReader{fd: int(parentSock.Fd())}
	defer fdr.closeAll()
	p := &syncPipe{enc: json.NewEncoder(parentSock), dec: json.NewDecoder(fdr)}
	err = runParent(p, proc.Pid, opts, func() error {
		master := fdr.take("terminal-master")
		if master == nil {
			return errors.New("terminal message without a descriptor")
		}
		if opts.Terminal == nil {
			master.Close()
			return nil
		}
		opts.Terminal(master)
		return nil
	})
	if err != nil {
		// Make sure a child stuck in setup does not linger; one that
		// already exited (or was reaped) is unaffected.
		_ = proc.Kill()
		return proc.Pid, fmt.Errorf("init stage (pid %d): %w", proc.Pid, err)
	}
	return proc.Pid, nil
}

// namespaceCloneFlags maps the spec's namespaces to clone flags. The
// container always gets a new mount namespace; a pid namespace without a
// path is new too, one with a path is joined (see inPidNamespace), and no
// pid namespace at all means sharing the pod's (StartOptions.PidNamespace,
// or cubby-pod's: the node's).
// net, ipc and uts are cubby-pod's: it was born in the pod's (or kept the
// node's). User and cgroup namespaces are not supported here.
func namespaceCloneFlags(l *specs.Linux) (uintptr, error) {
	flags := uintptr(unix.CLONE_NEWNS)
	if l == nil {
		return flags, nil
	}
	for _, ns := range l.Namespaces {
		switch ns.Type {
		case specs.MountNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace:
		case specs.PIDNamespace:
			if ns.Path == "" {
				flags |= unix.CLONE_NEWPID
			}
		case specs.CgroupNamespace:
			// Not a clone flag: the namespace's root is the cgroup the
			// child is in when it is made, so the init stage unshares it
			// once the parent has moved it into the container's cgroup.
			if ns.Path != "" {
				return 0, fmt.Errorf("join cgroup namespace %q: %w", ns.Path, errors.ErrUnsupported)
			}
		default:
			return 0, fmt.Errorf("%s namespace: %w", ns.Type, errors.ErrUnsupported)
		}
	}
	return flags, nil
}

// runParent is the parent's half of the sync protocol drawn in sync.go.
func runParent(p *syncPipe, pid int, opts StartOptions, onTerminal func() error) error {
	if err := p.send(message{Type: msgSpec, Spec: opts.Spec, Seccomp: opts.Seccomp}); err != nil {
		return err
	}
	return finishParent(p, pid, opts.CgroupProcsFiles, onTerminal)
}

// finishParent puts the child into its cgroups, lets it go and waits for
// its execve (EOF after msgExecReady) or its error report.
func finishParent(p *syncPipe, pid int, cgroupProcsFiles []string, onTerminal func() error) error {
	if err := joinCgroups(pid, cgroupProcsFiles); err != nil {
		return err
	}
	if err := p.send(message{Type: msgCgroupJoined}); err != nil {
		return err
	}
	ready := false
	for {
		m, err := p.recv()
		if err == io.EOF {
			if !ready {
				return fmt.Errorf("%w%s", ErrInitExited, childDeath(pid))
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, unix.ECONNRESET) {
				// It died before reading all we sent: say how.
				return fmt.Errorf("%w%s: %w", ErrInitExited, childDeath(pid), err)
			}
			return err
		}
		switch m.Type {
		case msgExecReady:
			ready = true
		case msgTerminal:
			if onTerminal == nil {
				return errors.New("unexpected terminal message from container init")
			}
			if err := onTerminal(); err != nil {
				return err
			}
		case msgError:
			if m.Error == nil {
				return errors.New("container init reported an empty error")
			}
			return m.Error
		default:
			return fmt.Errorf("unexpected %s message from container init", m.Type)
		}
	}
}

// childDeath describes how the child pid ended, if it has, without reaping
// it (the caller's reaper does that): ", killed by signal 9" or ", exit
// status 2". It waits a little for a dying child; "" when nothing is known.
func childDeath(pid int) string {
	for i := 0; i < 20; i++ {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if err != nil {
			return "" // reaped already, or not our child
		}
		code, status := siginfoChild(&info)
		switch code {
		case cldExited:
			return fmt.Sprintf(", exit status %d", status)
		case cldKilled, cldDumped:
			return fmt.Sprintf(", killed by signal %d", status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ""
}

// joinCgroups writes the child's pid into every cgroup.procs file.
func joinCgroups(pid int, files []string) error {
	for _, f := range files {
		if err := writeFile(f, strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("join cgroup %q: %w", f, err)
		}
	}
	return nil
}

// openStdio returns the child's fds 0-2, opening /dev/null for nil entries,
// and a func that closes what it opened.
func openStdio(files ...*os.File) ([]*os.File, func(), error) {
	var devNull *os.File
	closeFn := func() {
		if devNull != nil {
			devNull.Close()
		}
	}
	out := make([]*os.File, 0, len(files)+1)
	for _, f := range files {
		if f == nil {
			if devNull == nil {
				var err error
				if devNull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, nil, fmt.Errorf("open %s for stdio: %w", os.DevNull, err)
				}
			}
			f = devNull
		}
		out = append(out, f)
	}
	return out, closeFn, nil
}

// validateSpec checks what the init stage cannot do without.
func validateSpec(s *specs.Spec) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: no spec", ErrInvalidSpec)
	case s.Root == nil || s.Root.Path == "":
		return fmt.Errorf("%w: no root path", ErrInvalidSpec)
	case s.Process == nil:
		return fmt.Errorf("%w: no process", ErrInvalidSpec)
	case len(s.Process.Args) == 0 || s.Process.Args[0] == "":
		return fmt.Errorf("%w: no process args", ErrInvalidSpec)
	}
	return nil
}

// validateSeccomp checks that a spec with a seccomp profile comes with its
// compiled filter: a container never runs unconfined by accident.
func validateSeccomp(s *specs.Spec, f *SeccompFilter) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	if f == nil {
		return fmt.Errorf("%w: the spec has a seccomp profile but no compiled filter", ErrInvalidSpec)
	}
	return f.Validate()
}

// writeFile writes data to an existing file (cgroup and proc files: no
// create, no truncate).
func writeFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
