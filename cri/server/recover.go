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
// ones are monitored again. A pod left "creating" by a crash is torn down
// from its record.
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

	for _, rec := range pods {
		cfg := &runtimeapi.PodSandboxConfig{}
		if err := proto.Unmarshal(rec.Config, cfg); err != nil {
			return fmt.Errorf("decode config of pod %q: %w", rec.ID, err)
		}
		p := &pod{id: rec.ID, name: podName(cfg.GetMetadata()), config: cfg, created: make(chan struct{}), rec: rec}
		close(p.created)
		s.objs.pods.add(p)
		switch {
		case rec.State == store.PodCreating:
			s.log.Warn("pod was being created when cubbyd stopped; tearing it down", "pod", rec.ID)
			if err := s.stopPod(ctx, p); err != nil {
				s.log.Error("tear down half-created pod", "pod", rec.ID, "error", err)
			}
		case rec.State == store.PodReady && !s.rt.PodRunning(ctx, rec.ID):
			s.log.Warn("pod init is gone; pod is not ready", "pod", rec.ID)
			if err := p.update(s.db, func(r *store.Pod) { r.State = store.PodNotReady }); err != nil {
				return err
			}
		case rec.State == store.PodReady:
			s.monitorPod(p)
		}
	}
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
		c := &container{id: rec.ID, name: containerName(cfg.GetMetadata(), p.config.GetMetadata()), config: cfg, exited: make(chan struct{}), rec: rec}
		s.objs.ctrs.add(c)
		switch rec.State {
		case store.ContainerExited:
			c.markExited()
		case store.ContainerRunning:
			if p.status().State == store.PodReady {
				s.monitor(c)
			} else {
				s.settleExit(c)
			}
		}
	}
	return nil
}
