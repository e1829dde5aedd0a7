// Package seccomp turns a container's seccomp profile into the BPF program
// the container init stage installs right before execve.
//
// It runs in cubbyd, at CreateContainer: profiles come from the ecosystem's
// default profile (github.com/moby/profiles/seccomp, the one Docker,
// containerd and CRI-O ship) or from an OCI/Docker JSON file, and are
// compiled with libseccomp (through cgo), so a container gets exactly the
// filter runc would give it, runc's ENOSYS stub for syscalls newer than the
// profile included (enosys.go). The init stage in cubby-pod only loads the
// finished program with seccomp(2) and links none of this (see
// containerinit.SeccompFilter): the per-pod process stays small and free of
// cgo.
package seccomp

import (
	"errors"
	"fmt"
	"os"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrInvalidProfile wraps every reason a profile cannot be used: the
// request is at fault, not the runtime.
var ErrInvalidProfile = errors.New("invalid seccomp profile")

// DefaultProfile is the ecosystem's default profile for spec: the syscalls a
// container may make, widened by the capabilities spec.Process grants (with
// CAP_SYS_ADMIN a container may mount, for example), for the host's
// architectures.
func DefaultProfile(spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	p, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	return p, nil
}

// LoadProfile reads the OCI or Docker JSON seccomp profile at path (a file
// on the host) and resolves it for spec, as DefaultProfile does.
func LoadProfile(path string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: profile file %q does not exist", ErrInvalidProfile, path)
		}
		return nil, fmt.Errorf("read seccomp profile %q: %w", path, err)
	}
	p, err := mobyseccomp.LoadProfile(string(b), spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidProfile, path, err)
	}
	return p, nil
}
