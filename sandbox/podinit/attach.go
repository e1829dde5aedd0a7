package podinit

import (
	"encoding/json"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
	"cubby/sandbox/crilog"
)

// containerIO is a container's stdio as the pod init sets it up: the
// child's ends, and the ends the pod init keeps.
type containerIO struct {
	child [3]*os.File // the container's fds 0-2; nil is /dev/null

	stdin          *os.File // write end of the stdin pipe, if CRI stdin
	stdout, stderr *os.File // read ends, without a terminal
	// terminal is the master of the container's terminal (CRI tty), which
	// the init stage allocates in the container's devpts and sends back;
	// terminalOut is a dup of it that the log copier reads.
	terminal    *os.File
	terminalOut *os.File
}

func newContainerIO(stdin, tty bool) (*containerIO, error) {
	cio := &containerIO{}
	if tty {
		return cio, nil // the terminal comes from the init stage: setTerminal
	}
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		cio.child[0], cio.stdin = r, w
	}
	for i, dst := range []**os.File{&cio.stdout, &cio.stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			cio.closeChild()
			cio.closeParent()
			return nil, err
		}
		cio.child[i+1], *dst = w, r
	}
	return cio, nil
}

// setTerminal takes the container's terminal master from the init stage.
// Attached clients get dups of it, which share its file status flags, and
// cubbyd makes its descriptors non-blocking: so the master is made
// non-blocking here first and the log copier reads it through the poller,
// whatever a client does to the flags.
func (cio *containerIO) setTerminal(master *os.File) {
	fd := int(master.Fd()) // not pollable yet: Fd leaves the flags alone
	out, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		master.Close()
		return
	}
	cio.terminal, cio.terminalOut = master, os.NewFile(uintptr(out), "terminal-out")
}

func (cio *containerIO) closeChild() {
	seen := map[*os.File]bool{}
	for i, f := range cio.child {
		if f != nil && !seen[f] {
			f.Close()
			seen[f] = true
		}
		cio.child[i] = nil
	}
}

func (cio *containerIO) closeParent() {
	for _, f := range []*os.File{cio.stdin, cio.stdout, cio.stderr, cio.terminal, cio.terminalOut} {
		if f != nil {
			f.Close()
		}
	}
}

// dupFile duplicates f's descriptor without touching its file status
// flags (os.File.Fd would make a pollable one blocking, for every dup).
func dupFile(f *os.File, name string) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(raw uintptr) { fd, dupErr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup %s: %w", name, dupErr)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// attachment is one attached client's output pipes (write ends, set
// non-blocking: a client that does not keep up loses output, the
// container and its log never wait for it).
type attachment struct {
	stdout, stderr int // -1 if not wanted
}

// fanout returns the writer that copies the container's stream to every
// attached client.
func (c *container) fanout(stream string) fanoutWriter { return fanoutWriter{c, stream} }

type fanoutWriter struct {
	c      *container
	stream string
}

func (w fanoutWriter) Write(p []byte) (int, error) {
	w.c.attachMu.Lock()
	defer w.c.attachMu.Unlock()
	for a := range w.c.attached {
		fd := a.stdout
		if w.stream == crilog.Stderr {
			fd = a.stderr
		}
		if fd >= 0 {
			_, _ = unix.Write(fd, p) // EAGAIN: the client is too slow, drop
		}
	}
	return len(p), nil
}

// attach serves an attach session: it hands the caller pipes that receive
// the container's output from now on, and its stdin (or terminal). The
// session ends when the container exits (answered with its exit) or when
// the caller ends it. A "close-stdin" request in the session closes the
// container's stdin (CRI stdin_once).
func (s *server) attach(conn *net.UnixConn, dec *json.Decoder, req control.Request) {
	fail := func(err error) { _ = control.SendFiles(conn, control.Response{Error: err.Error()}, nil) }
	s.mu.Lock()
	c, ok := s.containers[req.ID]
	s.mu.Unlock()
	if !ok {
		fail(fmt.Errorf("container %q is not running", req.ID))
		return
	}
	select {
	case <-c.exited:
		fail(fmt.Errorf("container %q is not running", req.ID))
		return
	default:
	}

	a := &attachment{stdout: -1, stderr: -1}
	var files []*os.File
	var names []string
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	c.attachMu.Lock()
	err := func() error {
		if req.Stdin || c.terminal != nil {
			in, name := c.stdin, control.FileStdin
			if c.terminal != nil {
				in, name = c.terminal, control.FileTerminal
			}
			// A container without stdin (or whose stdin_once stdin is
			// closed) just gets no input from the client.
			if in != nil {
				d, err := dupFile(in, name)
				if err != nil {
					return err
				}
				files, names = append(files, d), append(names, name)
			}
		}
		for _, st := range []struct {
			want bool
			dst  *int
			name string
		}{{req.Stdout, &a.stdout, control.FileStdout}, {req.Stderr && c.terminal == nil, &a.stderr, control.FileStderr}} {
			if !st.want {
				continue
			}
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return err
			}
			if err := unix.SetNonblock(p[1], true); err != nil {
				unix.Close(p[0])
				unix.Close(p[1])
				return err
			}
			*st.dst = p[1]
			files, names = append(files, os.NewFile(uintptr(p[0]), st.name)), append(names, st.name)
		}
		return nil
	}()
	if err == nil {
		c.attached[a] = struct{}{}
	}
	c.attachMu.Unlock()
	detach := func() {
		c.attachMu.Lock()
		delete(c.attached, a)
		c.attachMu.Unlock()
		for _, fd := range []int{a.stdout, a.stderr} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
	if err != nil {
		closeAll()
		detach()
		fail(fmt.Errorf("attach to %q: %w", req.ID, err))
		return
	}
	err = control.SendFiles(conn, control.Response{Files: names}, files)
	closeAll()
	if err != nil {
		detach()
		return
	}

	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			var r control.Request
			if err := dec.Decode(&r); err != nil {
				return // EOF: the caller ended the session
			}
			if r.Op == control.OpCloseStdin {
				c.closeStdin()
			}
		}
	}()
	var resp control.Response
	select {
	case <-c.exited:
		e := c.exit
		resp.Exit = &e
	case <-ended:
	}
	detach()
	_ = json.NewEncoder(conn).Encode(resp)
}

// closeStdin closes the container's stdin: it reads EOF.
func (c *container) closeStdin() {
	c.attachMu.Lock()
	defer c.attachMu.Unlock()
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
}

// closeInput releases the stdin and terminal the pod init held for the
// container, once it has exited.
func (c *container) closeInput() {
	c.attachMu.Lock()
	defer c.attachMu.Unlock()
	for _, f := range []*os.File{c.stdin, c.terminal} {
		if f != nil {
			f.Close()
		}
	}
	c.stdin, c.terminal = nil, nil
}
