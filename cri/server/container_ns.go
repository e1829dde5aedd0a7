package server

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerNamespaces applies the container's namespace options to spec.
// The net, ipc and uts namespaces are always the pod's (or the node's, for
// a pod that keeps them): the container inherits them from the pod init
// that forks it. The pid namespace is the container's own (the default
// spec's new one), the pod's (no entry: the pod init's), the node's (only
// in a pod that shares the node's), or another container's (TARGET).
func (s *Server) containerNamespaces(spec *specs.Spec, p *pod, ns *runtimeapi.NamespaceOption) error {
	podNS := namespacesOf(p.config)
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_CONTAINER:
	case runtimeapi.NamespaceMode_POD:
		dropNamespace(spec, specs.PIDNamespace)
	case runtimeapi.NamespaceMode_NODE:
		if !podNS.hostPID {
			return fmt.Errorf("container pid namespace mode NODE needs a pod whose pid namespace mode is NODE: %w", errInvalidArgument)
		}
		dropNamespace(spec, specs.PIDNamespace)
	case runtimeapi.NamespaceMode_TARGET:
		path, err := s.targetPidNamespace(p, ns.GetTargetId())
		if err != nil {
			return err
		}
		if path == "" {
			dropNamespace(spec, specs.PIDNamespace)
			break
		}
		for i := range spec.Linux.Namespaces {
			if spec.Linux.Namespaces[i].Type == specs.PIDNamespace {
				spec.Linux.Namespaces[i].Path = path
			}
		}
	default:
		return fmt.Errorf("container pid namespace mode %s is not valid: %w", ns.GetPid(), errInvalidArgument)
	}
	if podNS.hostIPC {
		// The node's IPC namespace comes with the node's POSIX shared
		// memory, as in containerd and CRI-O.
		for i, m := range spec.Mounts {
			if m.Destination == "/dev/shm" {
				spec.Mounts[i] = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "rw"}}
			}
		}
	}
	return nil
}

// targetPidNamespace is the pid namespace file of container targetID, which
// must be in pod p: its own pinned namespace, or "" when it shares the
// pod's (or the node's), which the new container then shares too.
func (s *Server) targetPidNamespace(p *pod, targetID string) (string, error) {
	if targetID == "" {
		return "", fmt.Errorf("container pid namespace mode TARGET without a target_id: %w", errInvalidArgument)
	}
	target, err := s.objs.ctrs.get(targetID)
	if err != nil {
		return "", fmt.Errorf("pid namespace target: %w", err)
	}
	if target.status().PodID != p.id {
		return "", fmt.Errorf("pid namespace target %q is not in pod %q: %w", target.id, p.id, errInvalidArgument)
	}
	tspec, err := s.rt.ReadBundle(target.id)
	if err != nil {
		return "", fmt.Errorf("pid namespace target %q: %w", target.id, err)
	}
	if tspec.Linux != nil && slices.ContainsFunc(tspec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.PIDNamespace
	}) {
		for _, n := range tspec.Linux.Namespaces {
			if n.Type == specs.PIDNamespace && n.Path != "" {
				return n.Path, nil // the target itself joined another's
			}
		}
		return s.rt.PidNamespacePath(target.id), nil
	}
	return "", nil
}

// dropNamespace removes namespaces of type t from spec: the container
// shares its parent's.
func dropNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) {
	spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}
