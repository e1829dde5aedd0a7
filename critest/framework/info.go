package framework

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// VerboseInfo is the JSON object that containerd-style runtimes put in
// info["info"] of a verbose PodSandboxStatus or ContainerStatus.
type VerboseInfo struct {
	// Pid is the host pid of the container's process or the pod's init.
	Pid int `json:"pid"`
	// RuntimeSpec is the OCI spec the runtime built.
	RuntimeSpec *specs.Spec `json:"runtimeSpec"`
}

// ParseVerboseInfo decodes info["info"] of a verbose status response.
func ParseVerboseInfo(info map[string]string) (VerboseInfo, error) {
	raw, ok := info["info"]
	if !ok {
		return VerboseInfo{}, fmt.Errorf("verbose info: no %q key: %w", "info", ErrNoField)
	}
	var v VerboseInfo
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return VerboseInfo{}, fmt.Errorf("verbose info: %w", err)
	}
	if v.Pid <= 0 {
		return VerboseInfo{}, fmt.Errorf("verbose info: pid %d: %w", v.Pid, ErrNoField)
	}
	return v, nil
}

// NamespacePath returns the path of the spec's namespace of type typ
// ("network", "pid", ...), or "" when the spec has none.
func (v VerboseInfo) NamespacePath(typ specs.LinuxNamespaceType) string {
	if v.RuntimeSpec == nil || v.RuntimeSpec.Linux == nil {
		return ""
	}
	for _, ns := range v.RuntimeSpec.Linux.Namespaces {
		if ns.Type == typ {
			return ns.Path
		}
	}
	return ""
}

// CgroupsPath returns the spec's linux.cgroupsPath, or "".
func (v VerboseInfo) CgroupsPath() string {
	if v.RuntimeSpec == nil || v.RuntimeSpec.Linux == nil {
		return ""
	}
	return v.RuntimeSpec.Linux.CgroupsPath
}
