package server

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestResourceUpdateKeepsPidsLimit checks that a resource update from
// kubelet (which knows no pids limit) keeps the configured pids_limit and
// the device rules in the container's spec.
func TestResourceUpdateKeepsPidsLimit(t *testing.T) {
	limit := int64(64)
	old := &specs.LinuxResources{
		Pids:    &specs.LinuxPids{Limit: &limit},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	got := withDeviceRules(linuxResources(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}), old)
	if got.Pids == nil || got.Pids.Limit == nil || *got.Pids.Limit != limit {
		t.Errorf("pids after the update: %+v, want limit %d", got.Pids, limit)
	}
	if len(got.Devices) != 1 {
		t.Errorf("device rules after the update: %+v, want the old ones", got.Devices)
	}
	if got.Memory == nil || *got.Memory.Limit != 128<<20 {
		t.Errorf("memory after the update: %+v, want the new limit", got.Memory)
	}
}
