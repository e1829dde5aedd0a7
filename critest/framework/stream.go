package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// The client side of the CRI streaming protocols (what kubectl and crictl
// speak to a runtime's streaming server), over SPDY, for exec, attach and
// port-forward tests. Only the framing comes from k8s.io/streaming; the
// stream layout is the remotecommand v4 and portforward v1 protocols.

// StreamOptions are the client's streams of an exec or attach; nil ones are
// not requested (they must match the CRI request).
type StreamOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Tty            bool
	// Resize, with Tty, sends terminal sizes to the server.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's width and height in characters.
type TerminalSize struct {
	Width  uint16 `json:"Width"`
	Height uint16 `json:"Height"`
}

// ExitError is a command's non-zero exit, as the server reported it.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("command exited with %d", e.Code) }

// Stream runs an exec or attach whose URL a CRI Exec or Attach call
// returned, until the server ends it. A non-zero exit is an ExitError.
func Stream(ctx context.Context, url string, opts StreamOptions) error {
	conn, err := dialSPDY(ctx, url, "v4.channel.k8s.io")
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	newStream := func(typ string) (httpstream.Stream, error) {
		h := http.Header{}
		h.Set("streamType", typ)
		return conn.CreateStream(h)
	}
	errStream, err := newStream("error")
	if err != nil {
		return fmt.Errorf("create error stream: %w", err)
	}
	var wg sync.WaitGroup
	if opts.Stdin != nil {
		s, err := newStream("stdin")
		if err != nil {
			return fmt.Errorf("create stdin stream: %w", err)
		}
		go func() {
			_, _ = io.Copy(s, opts.Stdin)
			s.Close() // half-close: EOF to the server
		}()
	}
	for _, o := range []struct {
		typ string
		w   io.Writer
	}{{"stdout", opts.Stdout}, {"stderr", opts.Stderr}} {
		if o.w == nil {
			continue
		}
		s, err := newStream(o.typ)
		if err != nil {
			return fmt.Errorf("create %s stream: %w", o.typ, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(o.w, s) }()
	}
	if opts.Tty {
		s, err := newStream("resize")
		if err != nil {
			return fmt.Errorf("create resize stream: %w", err)
		}
		go func() {
			enc := json.NewEncoder(s)
			for size := range opts.Resize {
				if enc.Encode(size) != nil {
					return
				}
			}
		}()
	}
	status, err := io.ReadAll(errStream)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	wg.Wait()
	return decodeStatus(status)
}

// decodeStatus turns the error stream's content (a Kubernetes Status, or
// nothing on success) into an error.
func decodeStatus(b []byte) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	var st struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Details struct {
			Causes []struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("stream error: %s", b)
	}
	if st.Status == "Success" {
		return nil
	}
	if st.Reason == "NonZeroExitCode" {
		for _, c := range st.Details.Causes {
			if c.Reason == "ExitCode" {
				if n, err := strconv.Atoi(c.Message); err == nil {
					return ExitError{Code: n}
				}
			}
		}
	}
	return fmt.Errorf("stream error: %s", st.Message)
}

// PortForward opens a connection to port through the port-forward URL a
// CRI PortForward call returned. Data written to the returned stream goes
// to the port; Close ends it.
func PortForward(ctx context.Context, url string, port int32) (io.ReadWriteCloser, error) {
	conn, err := dialSPDY(ctx, url, "portforward.k8s.io")
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("port", strconv.Itoa(int(port)))
	h.Set("requestID", "0")
	h.Set("streamType", "error")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("create error stream: %w", err)
	}
	errStream.Close() // nothing to send on it
	h.Set("streamType", "data")
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("create data stream: %w", err)
	}
	pf := &forwarded{Stream: data, conn: conn, errc: make(chan error, 1)}
	go func() {
		b, _ := io.ReadAll(errStream)
		if len(b) > 0 {
			pf.errc <- fmt.Errorf("port-forward: %s", b)
		}
		close(pf.errc)
	}()
	return pf, nil
}

type forwarded struct {
	httpstream.Stream
	conn httpstream.Connection
	errc chan error
}

// CloseWrite half-closes the stream: the port reads EOF.
func (f *forwarded) CloseWrite() error { return f.Stream.Close() }

func (f *forwarded) Close() error {
	f.Stream.Reset()
	return f.conn.Close()
}

// Err returns the server's error report once the forward is over, if any.
func (f *forwarded) Err() error { return <-f.errc }

func dialSPDY(ctx context.Context, url, protocol string) (httpstream.Connection, error) {
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("upgrade %s: %w", url, err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		return nil, fmt.Errorf("upgrade %s: %w", url, err)
	}
	return conn, nil
}
