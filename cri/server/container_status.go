package server

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// ContainerStatus reports a container's state, times, exit and image.
func (s *Server) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.objs.ctrs.get(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.status()
	st := &runtimeapi.ContainerStatus{
		Id:          c.id,
		Metadata:    c.config.GetMetadata(),
		State:       containerState(rec.State),
		CreatedAt:   rec.CreatedAt,
		StartedAt:   rec.StartedAt,
		FinishedAt:  rec.FinishedAt,
		ExitCode:    rec.ExitCode,
		Image:       c.config.GetImage(),
		ImageRef:    rec.ImageID,
		ImageId:     rec.ImageID,
		Reason:      rec.Reason,
		Message:     rec.Message,
		Labels:      c.config.GetLabels(),
		Annotations: c.config.GetAnnotations(),
		Mounts:      s.statusMounts(c),
		LogPath:     rec.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: resources(c, rec)},
	}
	st.User = s.userStatus(c)
	st.StopSignal = criSignal(stopSignal(c))
	if img, err := s.images.Get(rec.ImageID); err == nil && len(img.RepoDigests) > 0 {
		st.ImageRef = img.RepoDigests[0]
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if r.GetVerbose() {
		info, err := s.containerInfo(c, rec)
		if err != nil {
			return nil, err
		}
		resp.Info = info
	}
	return resp, nil
}

func containerState(s store.ContainerState) runtimeapi.ContainerState {
	switch s {
	case store.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	default:
		return runtimeapi.ContainerState_CONTAINER_UNKNOWN
	}
}

// containerInfo is the verbose status, shaped like containerd's: the
// container's host pid, its sandbox and its OCI spec.
func (s *Server) containerInfo(c *container, rec store.Container) (map[string]string, error) {
	spec, err := s.rt.ReadBundle(c.id)
	if err != nil {
		return nil, err
	}
	info := map[string]any{
		"sandboxID":   rec.PodID,
		"pid":         rec.Pid,
		"runtimeSpec": spec,
	}
	if rec.State != store.ContainerRunning {
		info["pid"] = 0
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode container info: %w", err)
	}
	return map[string]string{"info": string(b)}, nil
}

// userStatus is the user the container runs as, nil if its bundle is gone.
func (s *Server) userStatus(c *container) *runtimeapi.ContainerUser {
	if u := c.user.Load(); u != nil {
		return u
	}
	spec, err := s.rt.ReadBundle(c.id)
	if err != nil {
		return nil
	}
	u := containerUserStatus(spec)
	c.user.Store(u)
	return u
}

// containerUserStatus reports spec's process user the CRI way.
func containerUserStatus(spec *specs.Spec) *runtimeapi.ContainerUser {
	if spec.Process == nil {
		return nil
	}
	u := spec.Process.User
	out := &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID)}
	// The spec's supplementary groups include the primary group.
	for _, g := range u.AdditionalGids {
		out.SupplementalGroups = append(out.SupplementalGroups, int64(g))
	}
	return &runtimeapi.ContainerUser{Linux: out}
}
