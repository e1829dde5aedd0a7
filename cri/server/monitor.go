package server

import (
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
	"cubby/sandbox"
)

// monitor waits in the background for running container c to exit and
// records its exit.
func (s *Server) monitor(c *container) {
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		podID := c.status().PodID
		for {
			exit, err := s.rt.WaitContainer(s.ctx, podID, c.id)
			if err == nil {
				s.finishExit(c, exit)
				return
			}
			if s.ctx.Err() != nil {
				return // cubbyd is shutting down; the next start resumes.
			}
			if errors.Is(err, sandbox.ErrPodNotRunning) {
				s.settleExit(c)
				return
			}
			s.log.Warn("wait for container", "container", c.id, "error", err)
			select {
			case <-time.After(time.Second):
			case <-s.ctx.Done():
				return
			}
		}
	}()
}

// settleExit records the exit of a container whose pod init is stopped or
// gone: the recorded exit if the pod init wrote one, else the container died
// with its pod init.
func (s *Server) settleExit(c *container) {
	rec := c.status()
	if rec.State != store.ContainerRunning {
		return
	}
	exit, ok, err := s.rt.ContainerExit(rec.PodID, c.id)
	if err != nil || !ok {
		s.log.Warn("container exit not recorded; it died with its pod", "container", c.id, "error", err)
		exit = sandbox.Exit{Pid: rec.Pid, Code: 137, Signal: 9, FinishedAt: time.Now().UnixNano()}
	}
	s.finishExit(c, exit)
}

// finishExit ends what is left of container c once its process has
// exited (children that left its process group, or its pid namespace when
// it shares the pod's: nothing of it survives), asks its memory cgroup
// whether the OOM killer struck, and records the exit.
func (s *Server) finishExit(c *container, exit sandbox.Exit) {
	path := c.status().CgroupPath
	oom, err := s.cgroups.OOMKills(path)
	if err != nil {
		s.log.Warn("read oom kills of container", "container", c.id, "error", err)
	}
	if err := s.cgroups.KillAll(path); err != nil {
		s.log.Warn("kill what is left of container", "container", c.id, "error", err)
	}
	s.recordExit(c, exit, oom > 0)
}

// recordExit records c's exit. Reason is as containerd gives it:
// OOMKilled when the OOM killer killed one of its processes (the main one or
// a child), else Completed for status 0 and Error otherwise.
//
// A store that keeps failing does not leave the container RUNNING: after
// a few tries the exit is kept in memory and reported, and the next start
// of cubbyd records it from the pod init's exit record.
func (s *Server) recordExit(c *container, exit sandbox.Exit, oomKilled bool) {
	exited := func(r *store.Container) {
		if r.State == store.ContainerExited {
			return
		}
		r.State = store.ContainerExited
		r.ExitCode = exit.Code
		r.FinishedAt = exit.FinishedAt
		switch {
		case oomKilled:
			r.Reason = "OOMKilled"
		case exit.Code != 0:
			r.Reason = "Error"
		default:
			r.Reason = "Completed"
		}
	}
	if err := retryStoreWrite(func() error { return c.update(s.db, exited) }); err != nil {
		s.log.Error("record container exit: kept in memory only until cubbyd restarts", "container", c.id, "error", err)
		c.updateInMemory(exited)
	}
	c.markExited()
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
}

// monitorPod waits in the background for the init of ready pod p to exit
// and then marks the pod NotReady, as kubelet expects of a sandbox whose
// pause process died (it then stops it and makes a new one).
func (s *Server) monitorPod(p *pod) {
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		pid := p.status().Pid
		if err := s.rt.WaitPodInit(s.ctx, p.id, pid); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("watch pod init", "pod", p.id, "error", err)
			}
			return
		}
		if p.stopping.Load() || p.status().State != store.PodReady {
			return // stopped on purpose
		}
		s.log.Warn("pod init exited; pod is not ready", "pod", p.id, "pid", pid)
		s.metrics.podInitExit("unexpected")
		if err := p.update(s.db, func(r *store.Pod) {
			if r.State == store.PodReady {
				r.State = store.PodNotReady
			}
		}); err != nil {
			s.log.Error("record pod not ready", "pod", p.id, "error", err)
		}
		// Its containers died with it, or (in the node's pid namespace)
		// would run on unmonitored: end them and record their exits.
		for _, c := range s.objs.podContainers(p.id) {
			s.settleExit(c)
		}
	}()
}

// storeWriteBackoff are the pauses between tries of a store write whose
// loss would leave an object in a state it is not in.
var storeWriteBackoff = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond}

// retryStoreWrite runs write until it succeeds, trying again after each
// pause of storeWriteBackoff; it returns the last error.
func retryStoreWrite(write func() error) error {
	err := write()
	for _, pause := range storeWriteBackoff {
		if err == nil {
			return nil
		}
		time.Sleep(pause)
		err = write()
	}
	return err
}
