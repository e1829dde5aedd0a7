package server

import (
	"context"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox stops the pod if needed, removes its containers and
// everything the pod had on the host. Removing a pod that is gone succeeds.
func (s *Server) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if errors.Is(err, errNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removePod(ctx, p); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %q: %w", p.id, err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// removePod stops and removes pod p under its lifecycle lock, so that no
// stop of the pod runs meanwhile and none writes its record afterwards.
func (s *Server) removePod(ctx context.Context, p *pod) error {
	select {
	case <-p.created:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.lifecycle.locked(ctx, func() error { return s.removePodLocked(ctx, p) })
}

func (s *Server) removePodLocked(ctx context.Context, p *pod) error {
	if err := s.stopPodLocked(ctx, p); err != nil {
		return err
	}
	for _, c := range s.objs.podContainers(p.id) {
		if err := s.removeContainer(ctx, c); err != nil {
			return err
		}
	}
	s.fault(faultRemoveCtrs)
	rec := p.status()
	if err := s.rt.RemovePod(p.id); err != nil {
		return err
	}
	if p.config.GetLinux().GetCgroupParent() == "" {
		if err := s.cgroups.Delete(rec.CgroupParent); err != nil {
			return err
		}
	}
	s.fault(faultRemovePodDir)
	if err := s.db.DeletePod(p.id); err != nil {
		return err
	}
	p.lifecycle.markRemoved()
	s.objs.pods.remove(p)
	return nil
}
