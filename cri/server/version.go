package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	runtimeName = "cubby"
	// criVersion is the CRI API version, and the kubelet runtime API
	// version string that containerd and CRI-O report too.
	criVersion        = "v1"
	kubeletAPIVersion = "0.1.0"
)

// Version reports the runtime's name and versions.
func (s *Server) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeletAPIVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    s.cfg.Version,
		RuntimeApiVersion: criVersion,
	}, nil
}
