package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"cubby/cri/store"
	"cubby/sandbox"
)

// StartStreaming serves exec, attach and port-forward streams (SPDY and
// WebSocket, through k8s.io/cri-streaming) on the TCP address addr
// ("127.0.0.1:0" picks a free port). Exec, Attach and PortForward answer
// with URLs on it. It returns the address it listens on; Close stops it.
func (s *Server) StartStreaming(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: cfg.Addr}
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("streaming server: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	s.stream = srv
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		_ = hs.Serve(ln)
	}()
	context.AfterFunc(s.ctx, func() { hs.Close() })
	return cfg.Addr, nil
}

// streamingServer returns the streaming server, or an error when cubbyd
// runs without one.
func (s *Server) streamingServer() (streaming.Server, error) {
	if s.stream == nil {
		return nil, fmt.Errorf("the streaming server is not running: %w", errFailedPrecondition)
	}
	return s.stream, nil
}

// streamRuntime runs what the streaming server's clients ask for.
type streamRuntime struct{ s *Server }

// Exec runs cmd in container id with the client's streams. A non-zero
// exit is returned as an exec.CodeExitError, which the streaming server
// reports to the client as the command's exit code.
func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := r.s
	c, rec, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	done, err := s.execSlot(c)
	if err != nil {
		return err
	}
	defer done()
	p, err := s.startExec(ctx, c, rec, sandbox.ExecOptions{Args: cmd, Tty: tty, Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil})
	if err != nil {
		return err
	}
	defer p.Close()
	// A client that goes away takes its exec with it.
	stop := context.AfterFunc(ctx, func() { _ = p.Kill() })
	defer stop()

	var outputs sync.WaitGroup
	var drain []*os.File
	if tty {
		go resizeLoop(p.Terminal, resize)
		if in != nil {
			go func() { _, _ = io.Copy(p.Terminal, in) }()
		}
		if out != nil {
			outputs.Add(1)
			go func() { defer outputs.Done(); copyOutput(out, p.Terminal) }()
		}
		drain = append(drain, p.Terminal)
	} else {
		if in != nil {
			go func() {
				_, _ = io.Copy(p.Stdin, in)
				p.Stdin.Close() // EOF from the client is EOF to the process
			}()
		}
		for _, st := range []struct {
			w io.Writer
			f *os.File
		}{{out, p.Stdout}, {errOut, p.Stderr}} {
			if st.f == nil {
				continue
			}
			outputs.Add(1)
			go func() { defer outputs.Done(); copyOutput(st.w, st.f) }()
			drain = append(drain, st.f)
		}
	}
	exit, err := p.Wait()
	if err != nil {
		return fmt.Errorf("exec in container %q: %w", c.id, err)
	}
	deadline := time.Now().Add(execDrainTimeout)
	for _, f := range drain {
		_ = f.SetReadDeadline(deadline)
	}
	outputs.Wait()
	if exit.Code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, exit.Code), Code: int(exit.Code)}
	}
	return nil
}

// copyOutput copies f to w until EOF, the drain deadline, or a terminal
// whose processes all closed it (EIO).
func copyOutput(w io.Writer, f *os.File) {
	_, _ = io.Copy(w, f)
}

// resizeLoop applies the client's terminal sizes until the channel closes.
func resizeLoop(terminal *os.File, sizes <-chan remotecommand.TerminalSize) {
	for size := range sizes {
		if size.Width == 0 && size.Height == 0 {
			continue
		}
		_ = sandbox.Resize(terminal, size.Width, size.Height)
	}
}

// Attach connects the client's streams to container id's own stdio.
func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return r.s.attach(ctx, id, in, out, errOut, tty, resize)
}

// PortForward connects stream to port on pod podID's loopback, inside the
// pod's network namespace.
func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	s := r.s
	p, err := s.objs.pods.get(podID)
	if err != nil {
		return err
	}
	if p.status().State != store.PodReady {
		return fmt.Errorf("pod sandbox %q is not ready: %w", p.id, errFailedPrecondition)
	}
	conn, err := s.rt.DialPodPort(ctx, p.id, port)
	if err != nil {
		return fmt.Errorf("port-forward to port %d of pod %q: %w", port, p.id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		_, _ = io.Copy(conn, stream)
		// The client is done sending: pass the half-close on.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	if _, err := io.Copy(stream, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port-forward to port %d of pod %q: %w", port, p.id, err)
	}
	return nil
}
