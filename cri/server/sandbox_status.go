package server

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// PodSandboxStatus reports a pod's state, network and metadata.
func (s *Server) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := p.status()
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(p, rec)}
	if r.GetVerbose() {
		info, err := podInfo(rec)
		if err != nil {
			return nil, err
		}
		resp.Info = info
	}
	return resp, nil
}

func podStatus(p *pod, rec store.Pod) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:          p.id,
		Metadata:    p.config.GetMetadata(),
		State:       podState(rec.State),
		CreatedAt:   rec.CreatedAt,
		Labels:      p.config.GetLabels(),
		Annotations: p.config.GetAnnotations(),
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: p.config.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
		RuntimeHandler: rec.RuntimeHandler,
	}
	if len(rec.IPs) > 0 && rec.State == store.PodReady {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: rec.IPs[0]}
		for _, ip := range rec.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

func podState(s store.PodState) runtimeapi.PodSandboxState {
	if s == store.PodReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// podInfo is the verbose status, shaped like containerd's so that tools
// reading "info" work: the init's pid and a spec naming the namespaces.
func podInfo(rec store.Pod) (map[string]string, error) {
	spec := specs.Spec{Linux: &specs.Linux{CgroupsPath: rec.InitCgroup}}
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace} {
		if path, ok := rec.Namespaces[string(t)]; ok {
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
		}
	}
	b, err := json.Marshal(map[string]any{"pid": rec.Pid, "runtimeSpec": spec, "cgroupParent": rec.CgroupParent})
	if err != nil {
		return nil, fmt.Errorf("encode pod info: %w", err)
	}
	return map[string]string{"info": string(b)}, nil
}
