package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// recoverTimeout bounds the teardown of pods a crash left half-made.
const recoverTimeout = time.Minute

// recover rebuilds the in-memory objects from the records of an earlier run
// and reconciles them with what is still alive: pods whose init is gone are
// NOTREADY, containers that exited meanwhile get their recorded exit, running
// ones are monitored again. What a crash left half-made is finished from its
// record: a container being created or a pod being run is torn down and
// removed (its RPC never answered, so a kubelet retry makes it anew), a
// container being started failed to start.
func (s *Server) recover() error {
	pods, err := s.db.Pods()
	if err != nil {
		return err
	}
	ctrs, err := s.db.Containers()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, recoverTimeout)
	defer cancel()

	var halfPods []*pod
	for _, rec := range pods {
		cfg := &runtimeapi.PodSandboxConfig{}
		if err := proto.Unmarshal(rec.Config, cfg); err != nil {
			return fmt.Errorf("decode config of pod %q: %w", rec.ID, err)
		}
		p := &pod{id: rec.ID, name: podName(cfg.GetMetadata()), config: cfg, created: make(chan struct{}), lifecycle: newPodLifecycle(), rec: rec}
		close(p.created)
		s.objs.pods.add(p)
		switch {
		case rec.State == store.PodCreating:
			halfPods = append(halfPods, p)
		case rec.State == store.PodReady && !s.rt.PodRunning(ctx, rec.ID):
			s.log.Warn("pod init is gone; pod is not ready", "pod", rec.ID)
			if err := p.update(s.db, func(r *store.Pod) { r.State = store.PodNotReady }); err != nil {
				return err
			}
		case rec.State == store.PodReady:
			s.monitorPod(p)
		}
	}
	var halfCtrs []*container
	for _, rec := range ctrs {
		cfg := &runtimeapi.ContainerConfig{}
		if err := proto.Unmarshal(rec.Config, cfg); err != nil {
			return fmt.Errorf("decode config of container %q: %w", rec.ID, err)
		}
		p, err := s.objs.pods.get(rec.PodID)
		if err != nil {
			s.log.Error("container without pod", "container", rec.ID, "pod", rec.PodID)
			continue
		}
		c := &container{id: rec.ID, name: containerName(cfg.GetMetadata(), p.config.GetMetadata()), config: cfg, created: closedChan(), exited: make(chan struct{}), rec: rec}
		s.objs.ctrs.add(c)
		switch {
		case rec.Creating:
			halfCtrs = append(halfCtrs, c)
		case rec.State == store.ContainerCreated && rec.Starting:
			s.failInterruptedStart(c)
		case rec.State == store.ContainerExited:
			c.markExited()
		case rec.State == store.ContainerRunning:
			if p.status().State == store.PodReady {
				s.monitor(c)
			} else {
				s.settleExit(c)
			}
		}
	}
	for _, c := range halfCtrs {
		s.log.Warn("container was being created when cubbyd stopped; removing it", "container", c.id)
		if err := s.removeContainer(ctx, c); err != nil {
			s.log.Error("remove half-created container", "container", c.id, "error", err)
		}
	}
	for _, p := range halfPods {
		s.log.Warn("pod was being created when cubbyd stopped; removing it", "pod", p.id)
		if err := s.removePod(ctx, p); err != nil {
			// It stays NOTREADY for StopPodSandbox/RemovePodSandbox.
			s.log.Error("remove half-created pod", "pod", p.id, "error", err)
		}
	}
	return nil
}

// failInterruptedStart ends a StartContainer that a crash interrupted: the
// process may have been started, but no caller was told, so it is killed
// and the container is EXITED with reason StartError, as for any failed
// start; kubelet then creates it anew.
func (s *Server) failInterruptedStart(c *container) {
	rec := c.status()
	if err := s.cgroups.KillAll(rec.CgroupPath); err != nil {
		s.log.Warn("kill interrupted start", "container", c.id, "error", err)
	}
	now := time.Now().UnixNano()
	err := c.update(s.db, func(r *store.Container) {
		r.State, r.StartedAt, r.FinishedAt, r.Starting = store.ContainerExited, now, now, false
		r.ExitCode, r.Reason, r.Message = 128, "StartError", "cubbyd stopped while starting the container"
	})
	if err != nil {
		s.log.Error("record interrupted start", "container", c.id, "error", err)
		return
	}
	c.markExited()
}
