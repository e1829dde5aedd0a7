package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the runtime and network conditions kubelet gates the node
// on and, when verbose (crictl info), the configuration in effect.
func (s *Server) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	var info map[string]string
	if r.GetVerbose() {
		var err error
		if info, err = s.statusInfo(); err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
	}
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.net.Status(); err != nil {
		network.Status = false
		network.Reason = "NetworkPluginNotReady"
		network.Message = err.Error()
	} else if err := s.net.Ignored(); err != nil {
		network.Reason = "NetworkConfigIgnored"
		network.Message = err.Error()
	}
	return &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			network,
		}},
		// supplemental_groups_policy Strict is honoured (see containerUser).
		Features:        &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
		RuntimeHandlers: runtimeHandlers(),
		Info:            info,
	}, nil
}

// RuntimeConfig reports the cgroup driver: cubby manages cgroupfs paths.
func (s *Server) RuntimeConfig(ctx context.Context, r *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{
		CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS,
	}}, nil
}

// UpdateRuntimeConfig accepts kubelet's pod CIDR; the CNI config decides
// addressing, so there is nothing to change.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
