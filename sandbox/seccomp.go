package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cubby/sandbox/containerinit"
	"cubby/sandbox/control"
	"cubby/sandbox/seccomp"
)

// ErrInvalidSeccompProfile means a seccomp profile cannot be used (missing
// file, bad JSON, unknown action): the request is at fault.
var ErrInvalidSeccompProfile = seccomp.ErrInvalidProfile

// DefaultSeccompProfile is the runtime's default seccomp profile (Docker's,
// containerd's and CRI-O's) for spec, whose capabilities must be final.
func DefaultSeccompProfile(spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	return seccomp.DefaultProfile(spec)
}

// LoadSeccompProfile reads an OCI or Docker JSON seccomp profile from a file
// on the host, for spec.
func LoadSeccompProfile(path string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	return seccomp.LoadProfile(path, spec)
}

// writeSeccompFilter compiles spec's seccomp profile into the bundle in
// dir, where the pod init picks it up (containerinit.ReadSeccompFilter).
// A spec without a profile leaves no filter file.
func (r *Runtime) writeSeccompFilter(dir string, spec *specs.Spec) error {
	path := filepath.Join(dir, containerinit.SeccompFilterFile)
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	f, err := r.seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return fmt.Errorf("compile seccomp profile: %w", err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode seccomp filter: %w", err)
	}
	return control.WriteFileAtomic(path, b, 0o600)
}
