package server

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox"
)

// Values of the deprecated seccomp_profile_path field.
const (
	seccompPathUnconfined     = "unconfined"
	seccompPathRuntimeDefault = "runtime/default"
	seccompPathDockerDefault  = "docker/default"
	seccompPathLocalhost      = "localhost/"
)

// seccompProfile resolves the security context's seccomp profile for spec
// (whose capabilities must already be final: the default profile allows
// more syscalls to a container with more capabilities). It returns nil for
// an unconfined container: no profile at all (kubelet's own default is to
// send RuntimeDefault) and no unset profile configured, Unconfined, or a
// privileged container, which ignores any profile. An empty
// SecurityProfile is RuntimeDefault. unset (seccomp_profile_path form) is
// the profile of a request that names none.
func seccompProfile(spec *specs.Spec, sc *runtimeapi.LinuxContainerSecurityContext, unset string) (*specs.LinuxSeccomp, error) {
	if sc.GetPrivileged() {
		return nil, nil
	}
	profile := sc.GetSeccomp()
	if profile == nil {
		var err error
		//lint:ignore SA1019 older clients still send only the path
		if profile, err = seccompFromPath(sc.GetSeccompProfilePath()); err != nil {
			return nil, err
		}
	}
	if profile == nil {
		var err error
		if profile, err = seccompFromPath(unset); err != nil {
			return nil, err
		}
	}
	if profile == nil {
		return nil, nil
	}
	switch profile.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		p, err := sandbox.DefaultSeccompProfile(spec)
		if err != nil {
			return nil, err
		}
		return p, nil
	case runtimeapi.SecurityProfile_Localhost:
		ref := profile.GetLocalhostRef()
		if !filepath.IsAbs(ref) {
			return nil, fmt.Errorf("seccomp localhost profile %q must be an absolute path on the host: %w", ref, errInvalidArgument)
		}
		p, err := sandbox.LoadSeccompProfile(ref, spec)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("seccomp profile type %v is not supported: %w", profile.GetProfileType(), errInvalidArgument)
}

// ValidateSeccompProfilePath checks a profile in the form of the deprecated
// seccomp_profile_path field ("", "unconfined", "runtime/default",
// "docker/default" or "localhost/<absolute path>").
func ValidateSeccompProfilePath(p string) error {
	profile, err := seccompFromPath(p)
	if err == nil && profile.GetProfileType() == runtimeapi.SecurityProfile_Localhost && !filepath.IsAbs(profile.GetLocalhostRef()) {
		err = fmt.Errorf("seccomp localhost profile %q must be an absolute path on the host: %w", profile.GetLocalhostRef(), errInvalidArgument)
	}
	return err
}

// seccompFromPath maps the deprecated seccomp_profile_path field to a
// SecurityProfile; "" means none.
func seccompFromPath(p string) (*runtimeapi.SecurityProfile, error) {
	switch {
	case p == "":
		return nil, nil
	case p == seccompPathUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case p == seccompPathRuntimeDefault || p == seccompPathDockerDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case strings.HasPrefix(p, seccompPathLocalhost):
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: strings.TrimPrefix(p, seccompPathLocalhost),
		}, nil
	}
	return nil, fmt.Errorf("seccomp profile path %q: want %q, %q or %q<path>: %w",
		p, seccompPathUnconfined, seccompPathRuntimeDefault, seccompPathLocalhost, errInvalidArgument)
}
