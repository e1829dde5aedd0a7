package server

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
	"cubby/rootfs"
)

// CreateContainer creates a container in a ready pod: its record, its
// rootfs snapshot (mounted) and its OCI spec. Nothing runs until
// StartContainer.
func (s *Server) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := r.GetConfig()
	if err := validateContainerConfig(cfg); err != nil {
		return nil, err
	}
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	podRec := p.status()
	if podRec.State != store.PodReady {
		return nil, fmt.Errorf("pod sandbox %q is not ready: %w", p.id, errFailedPrecondition)
	}
	img, err := s.images.Get(cfg.GetImage().GetImage())
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", cfg.GetImage().GetImage(), err)
	}
	cfgBytes, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode container config: %w", err)
	}

	id := newID()
	logDir, logPath := "", ""
	if dir, rel := p.config.GetLogDirectory(), cfg.GetLogPath(); dir != "" && rel != "" {
		logDir, logPath = filepath.Clean(dir), filepath.Join(dir, rel)
	}
	c := &container{
		id:      id,
		name:    containerName(cfg.GetMetadata(), p.config.GetMetadata()),
		config:  cfg,
		created: make(chan struct{}),
		exited:  make(chan struct{}),
		rec: store.Container{
			ID:         id,
			PodID:      p.id,
			Config:     cfgBytes,
			ImageRef:   cfg.GetImage().GetImage(),
			ImageID:    img.ID,
			LogPath:    logPath,
			LogDir:     logDir,
			StopSignal: img.Config.StopSignal,
			CgroupPath: path.Join(podRec.CgroupParent, id),
			CreatedAt:  time.Now().UnixNano(),
			State:      store.ContainerCreated,
			Creating:   true,
		},
	}
	c.lifecycle.Lock()
	for {
		existing, ok := s.objs.ctrs.add(c)
		if ok {
			break
		}
		c.lifecycle.Unlock()
		// kubelet retries a CreateContainer that outlived its deadline:
		// hand back the container once it exists, never one still being
		// built.
		id, err := s.retriedContainer(ctx, p, c.name, existing)
		if err != nil {
			return nil, err
		}
		if id != "" {
			return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
		}
		// The first create failed and took its name back: make ours.
		c.lifecycle.Lock()
	}
	err = s.createContainer(p, c, img)
	close(c.created)
	c.lifecycle.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", c.name, err)
	}
	// A stop of the pod that began while this container was made may not
	// have seen it: take it away again rather than leave it in a pod that
	// no longer runs.
	if p.stopping.Load() || p.status().State != store.PodReady {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := s.removeContainer(rctx, c); err != nil {
			s.log.Error("remove container made in a stopping pod", "container", c.id, "error", err)
		}
		return nil, fmt.Errorf("pod sandbox %q stopped while container %q was created: %w", p.id, c.name, errFailedPrecondition)
	}
	s.emitContainerEvent(c, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	s.fault(faultCtrDone)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// retriedContainer answers a CreateContainer whose name existing holds:
// once existing's own CreateContainer has finished, its id if it is the
// same container of the same pod, or an error if the name belongs to
// another pod's container. An empty id and no error mean that the create
// failed and the name is free again.
func (s *Server) retriedContainer(ctx context.Context, p *pod, name string, existing *container) (string, error) {
	if existing.status().PodID != p.id {
		return "", fmt.Errorf("container name %q is reserved for %q: %w", name, existing.id, errAlreadyExists)
	}
	select {
	case <-existing.created:
	case <-ctx.Done():
		return "", fmt.Errorf("wait for container %q being created: %w", name, ctx.Err())
	}
	if cur, err := s.objs.ctrs.get(existing.id); err != nil || cur != existing {
		return "", nil
	}
	if existing.status().Creating {
		return "", fmt.Errorf("container %q (%q) is not created: %w", name, existing.id, errFailedPrecondition)
	}
	return existing.id, nil
}

func (s *Server) createContainer(p *pod, c *container, img rootfs.Image) (err error) {
	if err := s.db.PutContainer(c.status()); err != nil {
		s.objs.ctrs.remove(c)
		return err
	}
	s.fault(faultCtrRecorded)
	var undo undoStack
	defer func() {
		if err == nil {
			return
		}
		if uerr := undo.run(); uerr != nil {
			s.log.Error("cleanup of failed container incomplete", "container", c.id, "error", uerr)
			_ = c.update(s.db, func(r *store.Container) {
				r.State, r.Reason, r.Message = store.ContainerExited, "CreateError", err.Error()
			})
			c.markExited()
			return
		}
		_ = s.db.DeleteContainer(c.id)
		s.objs.ctrs.remove(c)
	}()

	steps := newStepTimer(s.metrics.containerCreateStep)
	defer func() { s.log.Debug("container create steps", "container", c.id, "error", err, "steps", steps) }()
	if err := s.images.PrepareSnapshot(c.id, img.ID); err != nil {
		return err
	}
	steps.done("snapshot")
	s.fault(faultCtrSnapshot)
	undo.push("rootfs snapshot", func(context.Context) error { return s.images.RemoveSnapshot(c.id) })
	undo.push("bundle", func(context.Context) error { return s.rt.RemoveContainer(p.id, c.id) })
	rootfsPath := s.rt.RootfsPath(c.id)
	if err := s.images.MountSnapshot(c.id, rootfsPath); err != nil {
		return err
	}
	undo.push("rootfs mount", func(context.Context) error { return s.images.UnmountSnapshot(rootfsPath) })
	steps.done("mount")
	s.fault(faultCtrMounted)
	vols, err := s.prepareImageVolumes(c.id, c.config, &undo)
	if err != nil {
		return err
	}
	spec, err := s.containerSpec(specInput{pod: p, config: c.config, image: img, rootfs: rootfsPath, cgroupPath: c.status().CgroupPath, imageVolumes: vols})
	if err != nil {
		return err
	}
	steps.done("spec")
	defer steps.done("bundle")
	if err := s.rt.WriteBundle(c.id, spec); err != nil {
		return err
	}
	s.fault(faultCtrBundle)
	if err := c.update(s.db, func(r *store.Container) { r.Creating = false }); err != nil {
		return err
	}
	c.user.Store(containerUserStatus(spec))
	return nil
}

func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	if cfg == nil {
		return fmt.Errorf("container config is missing: %w", errInvalidArgument)
	}
	if cfg.GetMetadata().GetName() == "" {
		return fmt.Errorf("container metadata.name is empty: %w", errInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return fmt.Errorf("container image is empty: %w", errInvalidArgument)
	}
	if lp := cfg.GetLogPath(); lp != "" && (filepath.IsAbs(lp) || !filepath.IsLocal(lp)) {
		return fmt.Errorf("log path %q must be relative to the pod log directory: %w", lp, errInvalidArgument)
	}
	return nil
}
