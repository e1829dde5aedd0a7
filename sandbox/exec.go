package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
)

// AnnotationStdin in a container's spec asks the pod init to give the
// container a stdin pipe that it holds for attach (CRI stdin).
const AnnotationStdin = control.AnnotationStdin

// ExecOptions describe a process to run inside a running container.
type ExecOptions struct {
	Args []string
	// Tty gives the process a terminal (ExecProcess.Terminal) as its
	// stdin, stdout and stderr; the Stdin/Stdout/Stderr flags are then
	// ignored.
	Tty bool
	// Stdin, Stdout and Stderr ask for pipes to the process; streams not
	// asked for are /dev/null.
	Stdin, Stdout, Stderr bool
	// CgroupProcsFiles are the container's cgroup.procs files.
	CgroupProcsFiles []string
}

// ExecProcess is a process running inside a container, started by Exec.
// Its stdio descriptors belong to the caller, who closes them (Close does).
type ExecProcess struct {
	Pid int // in the pod's pid namespace
	// Stdin, Stdout, Stderr are the pipe ends asked for; Terminal is the
	// terminal master of a Tty exec. Reads can be given deadlines.
	Stdin, Stdout, Stderr, Terminal *os.File

	session *control.Session
}

// Exec starts opts.Args inside running container id of pod podID, through
// the pod init, which joins the container's namespaces, cgroup and
// security settings. ctx bounds the start only. A container that is not
// running, and a command that cannot be found or run, fail here.
func (r *Runtime) Exec(ctx context.Context, podID, id string, opts ExecOptions) (*ExecProcess, error) {
	s, err := control.Open(ctx, control.SocketPath(r.PodDir(podID)), control.Request{
		Op:               control.OpExec,
		ID:               id,
		Args:             opts.Args,
		Tty:              opts.Tty,
		Stdin:            opts.Stdin,
		Stdout:           opts.Stdout,
		Stderr:           opts.Stderr,
		CgroupProcsFiles: opts.CgroupProcsFiles,
	})
	if err != nil {
		return nil, err
	}
	p := &ExecProcess{
		Pid:      s.First.Pid,
		Stdin:    s.Files[control.FileStdin],
		Stdout:   s.Files[control.FileStdout],
		Stderr:   s.Files[control.FileStderr],
		Terminal: s.Files[control.FileTerminal],
		session:  s,
	}
	return p, nil
}

// Wait blocks until the process has exited and returns how.
func (p *ExecProcess) Wait() (Exit, error) {
	resp, err := p.session.Wait()
	if err != nil {
		return Exit{}, err
	}
	if resp.Exit == nil {
		return Exit{}, errors.New("pod init ended the exec without an exit")
	}
	return *resp.Exit, nil
}

// Kill kills the process and everything it started; Wait returns its exit.
func (p *ExecProcess) Kill() error {
	if err := p.session.End(); err != nil {
		return fmt.Errorf("kill exec %d: %w", p.Pid, err)
	}
	return nil
}

// Close releases the session and every descriptor. A process still
// running is killed.
func (p *ExecProcess) Close() { p.session.Close() }

// Resize sets the size of the terminal of a Tty exec or attach.
func Resize(terminal *os.File, width, height uint16) error {
	if terminal == nil {
		return nil
	}
	// Fd would switch the descriptor to blocking mode: use the raw one.
	rc, err := terminal.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	ws := &unix.Winsize{Col: width, Row: height}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) { ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	if ioctlErr != nil {
		return fmt.Errorf("resize terminal: %w", ioctlErr)
	}
	return nil
}

// AttachOptions say which of a running container's streams to attach to.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// Attachment is a client's connection to a running container's stdio,
// through its pod init. Output pipes receive what the container writes
// from now on; they reach EOF when the container exits or the attachment
// ends.
type Attachment struct {
	// Stdin writes to the container's stdin; Terminal is the container's
	// terminal (input and resize) when it has one. Stdout and Stderr are
	// the output pipes asked for.
	Stdin, Stdout, Stderr, Terminal *os.File

	session *control.Session
}

// Attach attaches to running container id of pod podID.
func (r *Runtime) Attach(ctx context.Context, podID, id string, opts AttachOptions) (*Attachment, error) {
	s, err := control.Open(ctx, control.SocketPath(r.PodDir(podID)), control.Request{
		Op:     control.OpAttach,
		ID:     id,
		Stdin:  opts.Stdin,
		Stdout: opts.Stdout,
		Stderr: opts.Stderr,
	})
	if err != nil {
		return nil, err
	}
	return &Attachment{
		Stdin:    s.Files[control.FileStdin],
		Stdout:   s.Files[control.FileStdout],
		Stderr:   s.Files[control.FileStderr],
		Terminal: s.Files[control.FileTerminal],
		session:  s,
	}, nil
}

// CloseStdin closes the container's stdin for good: it reads EOF.
func (a *Attachment) CloseStdin() error {
	if a.Stdin != nil {
		a.Stdin.Close()
	}
	return a.session.Send(control.Request{Op: control.OpCloseStdin})
}

// Detach ends the attachment; the container keeps running. The output
// pipes reach EOF.
func (a *Attachment) Detach() error { return a.session.End() }

// Close releases the attachment and its descriptors.
func (a *Attachment) Close() { a.session.Close() }

// Wait blocks until the attachment is over: the container exited or the
// attachment was ended.
func (a *Attachment) Wait() { _, _ = a.session.Wait() }
