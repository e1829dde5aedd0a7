package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// PortForward prepares port forwarding into a ready pod's network
// namespace and returns the URL the client streams it from.
func (s *Server) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	p, err := s.objs.pods.get(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if p.status().State != store.PodReady {
		return nil, fmt.Errorf("pod sandbox %q is not ready: %w", p.id, errFailedPrecondition)
	}
	for _, port := range r.GetPort() {
		if port <= 0 || port > 65535 {
			return nil, fmt.Errorf("port %d is out of range: %w", port, errInvalidArgument)
		}
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	return srv.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: p.id, Port: r.GetPort()})
}
