package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox"
)

// applySecurityContext applies a container's security context to spec:
// user and groups, read-only rootfs, no_new_privs, capabilities,
// privileged mode, masked and read-only paths, seccomp, and the checks on
// AppArmor and SELinux. in.pod's security context gates privileged mode.
func (s *Server) applySecurityContext(spec *specs.Spec, in specInput, sc *runtimeapi.LinuxContainerSecurityContext) error {
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return fmt.Errorf("run_as_group is set without run_as_user or run_as_username: %w", errInvalidArgument)
	}
	user, err := containerUser(in.rootfs, sc, in.image.Config.User)
	if err != nil {
		return err
	}
	spec.Process.User = user.User
	if !slices.ContainsFunc(spec.Process.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		spec.Process.Env = append(spec.Process.Env, "HOME="+user.Home)
	}
	spec.Root.Readonly = sc.GetReadonlyRootfs()
	spec.Process.NoNewPrivileges = sc.GetNoNewPrivs()

	if err := checkLSM(sc); err != nil {
		return err
	}
	if sc.GetPrivileged() {
		if !in.pod.config.GetLinux().GetSecurityContext().GetPrivileged() {
			return fmt.Errorf("privileged container in a pod that is not privileged: %w", errInvalidArgument)
		}
		if err := privileged(spec); err != nil {
			return err
		}
	} else {
		if err := applyCapabilities(spec.Process.Capabilities, sc.GetCapabilities(), user.UID); err != nil {
			return err
		}
		// kubelet always sends both lists (its defaults, or none at all
		// for procMount Unmasked, which protobuf cannot tell from unset).
		if p := sc.GetMaskedPaths(); len(p) > 0 {
			spec.Linux.MaskedPaths = p
		}
		if p := sc.GetReadonlyPaths(); len(p) > 0 {
			spec.Linux.ReadonlyPaths = p
		}
	}
	// Last: the default profile depends on the final capabilities.
	if spec.Linux.Seccomp, err = seccompProfile(spec, sc, s.cfg.UnsetSeccompProfile); err != nil {
		return err
	}
	return nil
}

// containerUser resolves the user the container runs as: the security
// context's uid or name (with its group), else the image's USER.
func containerUser(rootfsPath string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (sandbox.ResolvedUser, error) {
	user := imageUser
	switch {
	case sc.GetRunAsUser() != nil:
		user = fmt.Sprint(sc.GetRunAsUser().GetValue())
	case sc.GetRunAsUsername() != "":
		user = sc.GetRunAsUsername()
	}
	if g := sc.GetRunAsGroup(); g != nil {
		name, _, _ := strings.Cut(user, ":")
		user = fmt.Sprintf("%s:%d", name, g.GetValue())
	}
	opts := sandbox.UserOptions{Strict: sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict}
	for _, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > 1<<32-1 {
			return sandbox.ResolvedUser{}, fmt.Errorf("supplemental group %d is out of range: %w", g, errInvalidArgument)
		}
		opts.Extra = append(opts.Extra, uint32(g))
	}
	u, err := sandbox.ResolveUser(rootfsPath, user, opts)
	if err != nil {
		if errors.Is(err, sandbox.ErrUnknownUser) {
			return sandbox.ResolvedUser{}, fmt.Errorf("resolve user %q in the image: %v: %w", user, err, errInvalidArgument)
		}
		return sandbox.ResolvedUser{}, fmt.Errorf("resolve user %q: %w", user, err)
	}
	return u, nil
}

// capName normalizes a CRI capability name ("NET_ADMIN", "cap_net_admin")
// to the OCI one ("CAP_NET_ADMIN"); "ALL" stays.
func capName(n string) string {
	n = strings.ToUpper(n)
	if n != "ALL" && !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}

// applyCapabilities adds and drops capabilities as containerd does: "ALL"
// in add grants every capability cubbyd holds, "ALL" in drop starts
// from none, then the named ones are added and dropped, so {add: ALL, drop:
// CHOWN} is everything but CAP_CHOWN. Ambient capabilities are raised for
// a non-root user (root has them all anyway); they must be in the other
// sets too, so they are added there. The sets are rebuilt, never filtered
// in place, so sets sharing an array stay independent.
func applyCapabilities(caps *specs.LinuxCapabilities, c *runtimeapi.Capability, uid uint32) error {
	if caps == nil || c == nil {
		return nil
	}
	known := sandbox.KnownCapabilities()
	names := func(in []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, n := range in {
			n = capName(n)
			switch {
			case n == "ALL":
				all = true
			case !slices.Contains(known, n):
				return nil, false, fmt.Errorf("unknown capability %q: %w", n, errInvalidArgument)
			default:
				out = append(out, n)
			}
		}
		return out, all, nil
	}
	add, addAll, err := names(c.GetAddCapabilities())
	if err != nil {
		return err
	}
	var current []string
	if addAll {
		if current, err = sandbox.CurrentCapabilities(); err != nil {
			return err
		}
	}
	drop, dropAll, err := names(c.GetDropCapabilities())
	if err != nil {
		return err
	}
	ambient, ambientAll, err := names(c.GetAddAmbientCapabilities())
	if err != nil {
		return err
	}
	if ambientAll {
		return fmt.Errorf("ALL is not allowed in add_ambient_capabilities: %w", errInvalidArgument)
	}
	if uid == 0 {
		ambient = nil
	}
	for _, set := range []*[]string{&caps.Bounding, &caps.Effective, &caps.Permitted} {
		out := slices.Clone(*set)
		if addAll {
			out = slices.Clone(current)
		}
		if dropAll {
			out = nil
		}
		for _, a := range add {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		out = slices.DeleteFunc(out, func(n string) bool { return slices.Contains(drop, n) })
		// An ambient capability must be permitted (and bounded) too.
		for _, a := range ambient {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		*set = out
	}
	if len(ambient) > 0 {
		caps.Inheritable = slices.Clone(ambient)
		caps.Ambient = slices.Clone(ambient)
	}
	return nil
}

// privileged makes spec a privileged container's, as containerd and CRI-O
// do: every capability, every host device (and any device in the devices
// cgroup), writable /sys and cgroupfs, nothing masked or read-only. Seccomp
// is left out by seccompProfile.
func privileged(spec *specs.Spec) error {
	all, err := sandbox.CurrentCapabilities()
	if err != nil {
		return err
	}
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  slices.Clone(all),
		Effective: slices.Clone(all),
		Permitted: slices.Clone(all),
	}
	spec.Linux.MaskedPaths = nil
	spec.Linux.ReadonlyPaths = nil
	for i, m := range spec.Mounts {
		if m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2" {
			spec.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
		}
	}
	devices, err := sandbox.HostDevices()
	if err != nil {
		return fmt.Errorf("list host devices: %w", err)
	}
	spec.Linux.Devices = devices
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	return nil
}

// checkLSM accepts AppArmor and SELinux settings the way containerd does
// on a host without them (cubby applies neither): asking for the runtime's
// default or for no confinement is fine, a named AppArmor profile cannot be
// honoured and is an error; SELinux labels are ignored.
func checkLSM(sc *runtimeapi.LinuxContainerSecurityContext) error {
	name := ""
	if p := sc.GetApparmor(); p != nil && p.GetProfileType() == runtimeapi.SecurityProfile_Localhost {
		name = p.GetLocalhostRef()
	}
	//lint:ignore SA1019 older clients still send only the name
	if n := sc.GetApparmorProfile(); strings.HasPrefix(n, "localhost/") {
		name = strings.TrimPrefix(n, "localhost/")
	}
	if name != "" {
		return fmt.Errorf("apparmor profile %q: cubby does not apply apparmor profiles: %w", name, errInvalidArgument)
	}
	return nil
}
