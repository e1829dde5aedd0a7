package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"cubby/sandbox/seccomp"
)

// securityInfo is the "security" entry of a verbose Status. It is worked
// out once, when the server starts: the host does not change under it.
type securityInfo struct {
	Seccomp  seccompInfo  `json:"seccomp"`
	AppArmor apparmorInfo `json:"apparmor"`
}

type seccompInfo struct {
	// Enabled: the kernel filters system calls (CONFIG_SECCOMP_FILTER).
	Enabled bool `json:"enabled"`
	// LibseccompVersion is the library that compiles the profiles.
	LibseccompVersion string `json:"libseccompVersion"`
	// UnsetProfile is the profile of containers that ask for none
	// ("" unconfined, "runtime/default", "localhost/<path>").
	UnsetProfile string `json:"unsetProfile"`
}

type apparmorInfo struct {
	// HostEnabled: the host kernel runs AppArmor.
	HostEnabled bool `json:"hostEnabled"`
	// ProfilesApplied is false: cubby applies no AppArmor profile and
	// refuses requests for a named one.
	ProfilesApplied bool `json:"profilesApplied"`
}

func newSecurityInfo(unsetProfile string) securityInfo {
	return securityInfo{
		Seccomp: seccompInfo{
			Enabled:           kernelHasSeccomp(),
			LibseccompVersion: seccomp.LibraryVersion(),
			UnsetProfile:      unsetProfile,
		},
		AppArmor: apparmorInfo{HostEnabled: hostAppArmor()},
	}
}

// kernelHasSeccomp reports whether /proc/self/status has a Seccomp field,
// which kernels built with CONFIG_SECCOMP have.
func kernelHasSeccomp() bool {
	b, err := os.ReadFile("/proc/self/status")
	return err == nil && bytes.Contains(b, []byte("\nSeccomp:"))
}

// hostAppArmor reports whether the AppArmor LSM is enabled.
func hostAppArmor() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// statusInfo is the info map of a verbose Status (crictl info): each
// value is JSON, as containerd's. Besides what the server knows, it has
// the entries of cfg.StatusInfo ("config", "version").
func (s *Server) statusInfo() (map[string]string, error) {
	entries := map[string]any{
		"cgroup":   map[string]any{"version": s.cgroups.Version(), "driver": "cgroupfs"},
		"cni":      s.net.Info(),
		"security": s.security,
	}
	if s.cfg.StatusInfo != nil {
		for k, v := range s.cfg.StatusInfo() {
			entries[k] = v
		}
	}
	info := make(map[string]string, len(entries))
	for k, v := range entries {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("status info %q: %w", k, err)
		}
		info[k] = string(b)
	}
	return info, nil
}
