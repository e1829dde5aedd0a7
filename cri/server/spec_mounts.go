package server

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox"
)

// volumeMounts adds the config's bind mounts to spec. The container's root
// propagation follows the strongest mount: rshared when one is
// bidirectional (so its mounts reach the host's peer group), else the
// default rslave.
func volumeMounts(spec *specs.Spec, mounts []*runtimeapi.Mount, images map[int]imageVolume) error {
	for i, m := range mounts {
		if m.GetImage().GetImage() != "" {
			v, ok := images[i]
			if !ok {
				return fmt.Errorf("image volume %q at %q was not prepared", m.GetImage().GetImage(), m.GetContainerPath())
			}
			if !path.IsAbs(m.GetContainerPath()) {
				return fmt.Errorf("mount container path %q must be absolute: %w", m.GetContainerPath(), errInvalidArgument)
			}
			// Read-only all the way down: the image is not the
			// container's to change.
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: path.Clean(m.GetContainerPath()), Type: "bind", Source: v.source,
				Options: []string{"rbind", "rprivate", "ro", "rro", "nosuid", "nodev"}})
			continue
		}
		mnt, err := bindMount(m)
		if err != nil {
			return err
		}
		if m.GetPropagation() == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL {
			spec.Linux.RootfsPropagation = "rshared"
		}
		spec.Mounts = append(spec.Mounts, mnt)
	}
	return nil
}

// bindMount maps a CRI volume mount to an OCI bind mount: rbind, then ro
// (the top mount only, as runc: submounts stay writable) or rro (read-only
// all the way down, with mount_setattr), and the propagation. The host
// path is checked and its symlinks resolved here, at create time, and what
// it names is pinned: a source swapped before the start fails the start.
func bindMount(m *runtimeapi.Mount) (specs.Mount, error) {
	dest := m.GetContainerPath()
	if dest == "" || !path.IsAbs(dest) {
		return specs.Mount{}, fmt.Errorf("mount container path %q must be absolute: %w", dest, errInvalidArgument)
	}
	if m.GetHostPath() == "" {
		return specs.Mount{}, fmt.Errorf("mount for %q has no host path: %w", dest, errInvalidArgument)
	}
	if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
		return specs.Mount{}, fmt.Errorf("mount for %q: id-mapped mounts are not supported: %w", dest, errInvalidArgument)
	}
	if m.GetRecursiveReadOnly() {
		if !m.GetReadonly() {
			return specs.Mount{}, fmt.Errorf("mount for %q: recursive_read_only needs readonly: %w", dest, errInvalidArgument)
		}
		if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specs.Mount{}, fmt.Errorf("mount for %q: recursive_read_only needs private propagation, not %s: %w", dest, m.GetPropagation(), errInvalidArgument)
		}
	}
	opts := []string{"rbind"}
	prop := sandbox.PropagationPrivate
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts, prop = append(opts, "rslave"), sandbox.PropagationHostToContainer
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts, prop = append(opts, "rshared"), sandbox.PropagationBidirectional
	default:
		return specs.Mount{}, fmt.Errorf("mount for %q: unknown propagation %v: %w", dest, m.GetPropagation(), errInvalidArgument)
	}
	switch {
	case m.GetRecursiveReadOnly():
		opts = append(opts, "ro", "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	source, err := sandbox.ResolveBindSource(m.GetHostPath(), prop)
	if err != nil {
		if errors.Is(err, sandbox.ErrBindSourceMissing) || errors.Is(err, sandbox.ErrBindPropagation) {
			return specs.Mount{}, fmt.Errorf("mount for %q: %v: %w", dest, err, errInvalidArgument)
		}
		return specs.Mount{}, fmt.Errorf("mount for %q: %w", dest, err)
	}
	pin, err := sandbox.PinBindSource(source)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("mount for %q: %w", dest, err)
	}
	return specs.Mount{Destination: path.Clean(dest), Type: "bind", Source: source, Options: append(opts, pin)}, nil
}

// dropReplacedDefaults removes the default mounts that a config mount
// replaces, as containerd does: the one at the same target, and for a
// mount at /dev every default at or under /dev (its tmpfs, devpts, shm and
// mqueue). The init stage then neither mounts them under the volume nor
// creates device nodes in it: a /dev volume is the container's /dev as
// it is.
func dropReplacedDefaults(defaults []specs.Mount, mounts []*runtimeapi.Mount) []specs.Mount {
	replaced := func(d specs.Mount) bool {
		dest := path.Clean(d.Destination)
		for _, m := range mounts {
			target := path.Clean(m.GetContainerPath())
			if target == dest || (target == "/dev" && strings.HasPrefix(dest, "/dev/")) {
				return true
			}
		}
		return false
	}
	return slices.DeleteFunc(defaults, replaced)
}

// uncoveredVolumes are the image's volumes that no config mount replaces.
func uncoveredVolumes(volumes []string, mounts []*runtimeapi.Mount) []string {
	var out []string
	for _, v := range volumes {
		if !slices.ContainsFunc(mounts, func(m *runtimeapi.Mount) bool { return path.Clean(m.GetContainerPath()) == path.Clean(v) }) {
			out = append(out, v)
		}
	}
	return out
}
