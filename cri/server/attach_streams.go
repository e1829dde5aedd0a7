package server

import (
	"context"
	"io"
	"os"
	"sync"

	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"cubby/sandbox"
)

// attach connects a streaming client to container id's stdio. It returns
// when the container exits, the client goes away, or the client's stdin
// ends: then the container's stdin is closed if the container is
// stdin_once (without a terminal, like containerd), else the client is
// just detached. A container created without stdin ignores the client's.
func (s *Server) attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, rec, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	a, err := s.rt.Attach(ctx, rec.PodID, c.id, sandbox.AttachOptions{Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil})
	if err != nil {
		return err
	}
	defer a.Close()
	stop := context.AfterFunc(ctx, func() { _ = a.Detach() })
	defer stop()
	if a.Terminal != nil {
		go resizeLoop(a.Terminal, resize)
	}
	dst := a.Stdin
	if a.Terminal != nil {
		dst = a.Terminal
	}
	if in != nil && dst != nil { // a container without stdin takes no input
		go func() {
			_, _ = io.Copy(dst, in)
			if c.config.GetStdinOnce() && !tty {
				_ = a.CloseStdin()
				return
			}
			_ = a.Detach()
		}()
	}
	var outputs sync.WaitGroup
	for _, st := range []struct {
		w io.Writer
		f *os.File
	}{{out, a.Stdout}, {errOut, a.Stderr}} {
		if st.w == nil || st.f == nil {
			continue
		}
		outputs.Add(1)
		go func() { defer outputs.Done(); _, _ = io.Copy(st.w, st.f) }()
	}
	outputs.Wait()
	a.Wait()
	return nil
}
