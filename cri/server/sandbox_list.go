package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods, filtered by id (or prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	var items []*runtimeapi.PodSandbox
	for _, p := range s.objs.pods.list() {
		if f.GetId() != "" && !strings.HasPrefix(p.id, f.GetId()) {
			continue
		}
		rec := p.status()
		state := podState(rec.State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		if !matchLabels(p.config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		items = append(items, &runtimeapi.PodSandbox{
			Id:             p.id,
			Metadata:       p.config.GetMetadata(),
			State:          state,
			CreatedAt:      rec.CreatedAt,
			Labels:         p.config.GetLabels(),
			Annotations:    p.config.GetAnnotations(),
			RuntimeHandler: rec.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

// matchLabels tells whether labels has every key=value of selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
