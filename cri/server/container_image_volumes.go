package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox"
)

// Image volumes (Mount.image, KEP-4639): an image's root filesystem mounted
// read-only into a container. Each is a snapshot of its own, named after
// the container and the mount's index in the config, mounted under the
// container's bundle; the container gets a read-only bind of it (or of its
// sub_path).

// imageVolumeID names the snapshot of the image of container cid's i-th
// mount.
func imageVolumeID(cid string, i int) string { return cid + "-imagevolume-" + strconv.Itoa(i) }

// imageVolumeDir is where that snapshot is mounted on the host.
func (s *Server) imageVolumeDir(cid string, i int) string {
	return filepath.Join(s.rt.ContainerDir(cid), "imagevolumes", strconv.Itoa(i))
}

// imageVolume is a prepared image volume: the host path to bind and the
// image's id.
type imageVolume struct {
	source  string
	imageID string
}

// prepareImageVolumes mounts the image of every image mount of cfg and
// returns them by mount index; each step's undo goes on undo.
func (s *Server) prepareImageVolumes(cid string, cfg *runtimeapi.ContainerConfig, undo *undoStack) (map[int]imageVolume, error) {
	out := map[int]imageVolume{}
	for i, m := range cfg.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		if !m.GetReadonly() {
			return nil, fmt.Errorf("image volume %q at %q must be read-only: %w", ref, m.GetContainerPath(), errInvalidArgument)
		}
		img, err := s.images.Get(ref)
		if err != nil {
			return nil, fmt.Errorf("image volume %q: %w", ref, err)
		}
		id, dir := imageVolumeID(cid, i), s.imageVolumeDir(cid, i)
		if err := s.images.PrepareSnapshot(id, img.ID); err != nil {
			return nil, fmt.Errorf("image volume %q: %w", ref, err)
		}
		undo.push("image volume snapshot", func(context.Context) error { return s.images.RemoveSnapshot(id) })
		if err := s.images.MountSnapshot(id, dir); err != nil {
			return nil, fmt.Errorf("image volume %q: %w", ref, err)
		}
		undo.push("image volume mount", func(context.Context) error { return s.images.UnmountSnapshot(dir) })
		source, err := sandbox.ResolveImageSubPath(dir, m.GetImageSubPath())
		if err != nil {
			if errors.Is(err, sandbox.ErrImageSubPath) {
				return nil, fmt.Errorf("image volume %q: %v: %w", ref, err, errInvalidArgument)
			}
			return nil, fmt.Errorf("image volume %q: %w", ref, err)
		}
		out[i] = imageVolume{source: source, imageID: img.ID}
	}
	return out, nil
}

// removeImageVolumes unmounts and removes container c's image volumes.
// Idempotent.
func (s *Server) removeImageVolumes(c *container) error {
	for i, m := range c.config.GetMounts() {
		if m.GetImage().GetImage() == "" {
			continue
		}
		if err := s.images.UnmountSnapshot(s.imageVolumeDir(c.id, i)); err != nil {
			return err
		}
		if err := s.images.RemoveSnapshot(imageVolumeID(c.id, i)); err != nil {
			return err
		}
	}
	return nil
}

// statusMounts are the config's mounts as ContainerStatus reports them:
// an image volume names the image it shows by id (image_ref).
func (s *Server) statusMounts(c *container) []*runtimeapi.Mount {
	mounts := c.config.GetMounts()
	out := make([]*runtimeapi.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = m
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		img, err := s.images.Get(ref)
		if err != nil {
			continue
		}
		mm := proto.Clone(m).(*runtimeapi.Mount)
		mm.Image.ImageRef = img.ID
		out[i] = mm
	}
	return out
}
