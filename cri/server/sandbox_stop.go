package server

import (
	"context"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// StopPodSandbox kills the pod's containers and its init, tears down its
// network and releases its namespaces. Stopping a pod that is gone or
// already stopped succeeds.
func (s *Server) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if errors.Is(err, errNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopPod(ctx, p); err != nil {
		return nil, fmt.Errorf("stop pod sandbox %q: %w", p.id, err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopPod stops pod p once its RunPodSandbox has finished. Concurrent
// stops of one pod share one run and its result; a stop waits for a
// remove in progress (and then has nothing to do).
func (s *Server) stopPod(ctx context.Context, p *pod) error {
	select {
	case <-p.created:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.lifecycle.joinStop(ctx, func() error { return s.stopPodLocked(ctx, p) })
}

// stopPodLocked brings pod p to NotReady with nothing of it left running.
// Every step is idempotent, so a failed stop is finished by the next one.
// The caller holds p's lifecycle lock.
func (s *Server) stopPodLocked(ctx context.Context, p *pod) (err error) {
	steps := newStepTimer(s.metrics.podStopStep)
	defer func() { s.log.Debug("pod stop steps", "pod", p.id, "error", err, "steps", steps) }()
	p.stopping.Store(true)
	rec := p.status()
	// The pod init kills every container on shutdown and records their exits.
	if err := s.rt.StopPod(ctx, p.id, rec.Pid); err != nil {
		return err
	}
	// The kernel takes down with the pod init only what is in the pod's
	// pid namespace: a container with a pid namespace of its own (a
	// sibling of the pod's), and every container of a pod in the node's,
	// outlives a pod init that died early unless the keeper ended it.
	// Their cgroups hold them all. Killed and removed: a missing cgroup
	// is no error.
	for _, c := range s.objs.podContainers(p.id) {
		if rec := c.status(); rec.StartedAt != 0 {
			if err := s.cgroups.Delete(rec.CgroupPath); err != nil {
				return fmt.Errorf("kill container %q: %w", c.id, err)
			}
		}
	}
	for _, c := range s.objs.podContainers(p.id) {
		s.settleExit(c)
	}
	// From here the pod cannot run anything: a step that fails below
	// leaves it NotReady, for the next Stop or Remove to finish.
	defer func() {
		if err != nil {
			_ = p.update(s.db, func(r *store.Pod) { r.State = store.PodNotReady })
		}
	}()
	steps.done("pod_init")
	s.fault(faultStopPodInit)
	if netns := rec.Namespaces[string(specs.NetworkNamespace)]; !rec.NetworkDone && netns != "" {
		if err := s.net.Teardown(ctx, podNetwork(p.id, p.config, netns)); err != nil {
			return err
		}
	}
	steps.done("network")
	s.fault(faultStopNetwork)
	if err := s.rt.ReleaseNamespaces(p.id); err != nil {
		return err
	}
	if err := s.cgroups.Delete(rec.InitCgroup); err != nil {
		return err
	}
	steps.done("namespaces_cgroup")
	defer steps.done("record")
	return p.update(s.db, func(r *store.Pod) {
		r.State = store.PodNotReady
		r.NetworkDone = true
	})
}
