package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
	"cubby/sandbox"
)

// killWait bounds the wait for a SIGKILLed container to be reaped.
const killWait = 10 * time.Second

// StopContainer sends the stop signal, waits up to the timeout, then kills.
// Stopping a container that is gone or not running succeeds.
func (s *Server) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if errors.Is(err, errNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c, time.Duration(r.GetTimeout())*time.Second); err != nil {
		return nil, fmt.Errorf("stop container %q: %w", c.id, err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *Server) stopContainer(ctx context.Context, c *container, timeout time.Duration) error {
	rec := c.status()
	if rec.State != store.ContainerRunning {
		return nil
	}
	if timeout > 0 {
		sig := stopSignal(c)
		if err := s.signal(ctx, c, sig); err != nil {
			return err
		}
		select {
		case <-c.exited:
			return nil
		case <-time.After(timeout):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := s.signal(ctx, c, syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("container did not exit %s after SIGKILL", killWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends sig to c; a pod init that is gone took the container with it.
func (s *Server) signal(ctx context.Context, c *container, sig syscall.Signal) error {
	err := s.rt.SignalContainer(ctx, c.status().PodID, c.id, sig)
	if errors.Is(err, sandbox.ErrPodNotRunning) {
		s.settleExit(c)
		return nil
	}
	return err
}

// stopSignal is the config's stop_signal, else the image's STOPSIGNAL
// ("SIGQUIT", "QUIT" or "3"), else SIGTERM.
func stopSignal(c *container) syscall.Signal {
	if sig := c.config.GetStopSignal(); sig != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		if n := unix.SignalNum(strings.TrimPrefix(sig.String(), "SIGNAL_")); n != 0 {
			return n
		}
	}
	name := strings.ToUpper(c.status().StopSignal)
	if name == "" {
		return syscall.SIGTERM
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig
	}
	return syscall.SIGTERM
}

// criSignal names sig the CRI way (SIGNAL_SIGTERM); SIGNAL_RUNTIME_DEFAULT when
// the CRI has no name for it.
func criSignal(sig syscall.Signal) runtimeapi.Signal {
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+unix.SignalName(sig)])
}
