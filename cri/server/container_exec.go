package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Exec prepares a streaming exec in a running container and returns the
// URL the client streams it from.
func (s *Server) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(r.GetCmd()) == 0 || r.GetCmd()[0] == "" {
		return nil, fmt.Errorf("exec command is empty: %w", errInvalidArgument)
	}
	c, _, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	// The full id, if a prefix was given.
	return srv.GetExec(&runtimeapi.ExecRequest{ContainerId: c.id, Cmd: r.GetCmd(), Tty: r.GetTty(), Stdin: r.GetStdin(), Stdout: r.GetStdout(), Stderr: r.GetStderr()})
}
