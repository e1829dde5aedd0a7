package server

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// StartContainer starts a created container: its cgroup, then its process,
// forked by the pod init. A start that fails leaves the container EXITED
// with reason StartError, as kubelet expects.
func (s *Server) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	if cur, err := s.objs.ctrs.get(c.id); err != nil || cur != c {
		return nil, fmt.Errorf("container %q was removed: %w", c.id, errNotFound)
	}
	rec := c.status()
	if rec.State != store.ContainerCreated {
		return nil, fmt.Errorf("container %q is %s, not created: %w", c.id, rec.State, errFailedPrecondition)
	}
	p, err := s.objs.pods.get(rec.PodID)
	if err != nil {
		return nil, err
	}
	if p.status().State != store.PodReady {
		return nil, fmt.Errorf("pod sandbox %q of container %q is not ready: %w", p.id, c.id, errFailedPrecondition)
	}
	if err := s.startContainer(ctx, c, rec); err != nil {
		now := time.Now().UnixNano()
		_ = c.update(s.db, func(r *store.Container) {
			r.State, r.StartedAt, r.FinishedAt, r.Starting = store.ContainerExited, now, now, false
			r.ExitCode, r.Reason, r.Message = 128, "StartError", err.Error()
		})
		c.markExited()
		s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
		if p.stopping.Load() {
			// The pod's stop raced this start and took its init away.
			return nil, fmt.Errorf("start container %q: pod sandbox %q is stopping: %w (%w)", c.id, p.id, errFailedPrecondition, err)
		}
		m := p.config.GetMetadata()
		return nil, fmt.Errorf("start container %q (%q of pod %s/%s): %w", c.id, c.config.GetMetadata().GetName(), m.GetNamespace(), m.GetName(), err)
	}
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	s.fault(faultStartDone)
	return &runtimeapi.StartContainerResponse{}, nil
}

func (s *Server) startContainer(ctx context.Context, c *container, rec store.Container) (err error) {
	steps := newStepTimer(s.metrics.containerStartStep)
	defer func() { s.log.Debug("container start steps", "container", c.id, "error", err, "steps", steps) }()
	spec, err := s.rt.ReadBundle(c.id)
	if err != nil {
		return err
	}
	// Persisted before the first host side effect: recovery kills a start
	// that a crash interrupted.
	if err := c.update(s.db, func(r *store.Container) { r.Starting = true }); err != nil {
		return err
	}
	if err := s.cgroups.Create(rec.CgroupPath, spec.Linux.Resources); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	s.fault(faultStartCgroup)
	procs, err := s.cgroups.ProcsFiles(rec.CgroupPath)
	if err != nil {
		return err
	}
	steps.done("cgroup")
	pid, startedAt, err := s.rt.StartContainer(ctx, rec.PodID, c.id, rec.LogDir, rec.LogPath, procs)
	if err != nil {
		return err
	}
	s.fault(faultStartProcess)
	steps.done("process")
	defer steps.done("record")
	running := func(r *store.Container) {
		r.State, r.Pid, r.StartedAt, r.Starting = store.ContainerRunning, pid, startedAt.UnixNano(), false
	}
	if err := retryStoreWrite(func() error { return c.update(s.db, running) }); err != nil {
		// Nobody may run unrecorded: kill what was started; the caller
		// records the start as failed.
		if kerr := s.cgroups.KillAll(rec.CgroupPath); kerr != nil {
			return fmt.Errorf("record started container: %w (and kill it: %w)", err, kerr)
		}
		return fmt.Errorf("record started container: %w", err)
	}
	s.monitor(c)
	return nil
}
