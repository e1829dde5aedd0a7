package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DialPodPort connects to port on the loopback of pod id's network
// namespace (127.0.0.1, then ::1), for port forwarding. A pod without a
// pinned network namespace uses the host's network: the port is dialed
// from here.
func (r *Runtime) DialPodPort(ctx context.Context, id string, port int32) (net.Conn, error) {
	nsPath := r.NamespacePath(id, specs.NetworkNamespace)
	ns, err := os.Open(nsPath)
	if errors.Is(err, os.ErrNotExist) {
		return dialLoopback(ctx, port)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace of pod %q: %w", id, err)
	}
	defer ns.Close()
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The socket is made in the namespace of the thread that creates
		// it; this thread joins the pod's and is never given back to the
		// scheduler (the goroutine ends locked, the runtime retires it).
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("join network namespace of pod %q: %w", id, err)}
			return
		}
		conn, err := dialLoopback(ctx, port)
		ch <- result{conn, err}
	}()
	res := <-ch
	return res.conn, res.err
}

func dialLoopback(ctx context.Context, port int32) (net.Conn, error) {
	var d net.Dialer
	p := strconv.Itoa(int(port))
	conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err == nil {
		return conn, nil
	}
	if conn6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p)); err6 == nil {
		return conn6, nil
	}
	return nil, fmt.Errorf("dial port %d on the pod's loopback: %w", port, err)
}
