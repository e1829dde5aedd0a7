package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Attach prepares a streaming attach to a running container's stdio and
// returns the URL the client streams it from.
func (s *Server) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, _, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	return srv.GetAttach(&runtimeapi.AttachRequest{ContainerId: c.id, Tty: r.GetTty(), Stdin: r.GetStdin(), Stdout: r.GetStdout(), Stderr: r.GetStderr()})
}
