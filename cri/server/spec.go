package server

import (
	"errors"
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/rootfs"
	"cubby/sandbox"
	"cubby/sandbox/containerinit"
)

// specInput is everything a container's OCI spec is made from.
type specInput struct {
	pod        *pod
	config     *runtimeapi.ContainerConfig
	image      rootfs.Image
	rootfs     string // mounted rootfs on the host
	cgroupPath string
	// imageVolumes are the prepared image mounts, by index in the config.
	imageVolumes map[int]imageVolume
}

// containerSpec maps a CRI container config, its image and its pod to the
// OCI spec the container init stage applies.
func (s *Server) containerSpec(in specInput) (*specs.Spec, error) {
	cfg := in.config
	spec := containerinit.DefaultSpec(in.rootfs)

	args, err := processArgs(cfg, in.image.Config)
	if err != nil {
		return nil, err
	}
	spec.Process.Args = args
	spec.Process.Env = mergeEnv(spec.Process.Env, in.image.Config.Env, cfg.GetEnvs(), containerHostname(in.pod.config))
	spec.Process.Cwd = "/"
	if wd := cfg.GetWorkingDir(); wd != "" {
		spec.Process.Cwd = wd
	} else if wd := in.image.Config.WorkingDir; wd != "" {
		spec.Process.Cwd = wd
	}

	sc := cfg.GetLinux().GetSecurityContext()
	if err := s.containerNamespaces(spec, in.pod, sc.GetNamespaceOptions()); err != nil {
		return nil, err
	}
	if err := s.applySecurityContext(spec, in, sc); err != nil {
		return nil, err
	}

	spec.Mounts = dropReplacedDefaults(spec.Mounts, cfg.GetMounts())
	spec.Mounts = append(spec.Mounts, s.podFileMounts(in.pod.id, cfg)...)
	if err := volumeMounts(spec, cfg.GetMounts(), in.imageVolumes); err != nil {
		return nil, err
	}
	volumes := uncoveredVolumes(in.image.Config.Volumes, cfg.GetMounts())
	hostPaths, err := sandbox.MakeImageVolumes(in.rootfs, volumes)
	if err != nil {
		return nil, err
	}
	if spec.Root.Readonly {
		// A read-only rootfs keeps its image volumes writable (the data
		// is in the container's writable layer), as with containerd.
		for i, v := range volumes {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: path.Clean(v), Type: "bind", Source: hostPaths[i],
				Options: []string{"rbind", "rprivate", "rw"}})
		}
	}

	spec.Linux.CgroupsPath = in.cgroupPath
	if err := addDevices(spec, cfg.GetDevices()); err != nil {
		return nil, err
	}
	spec.Linux.Resources = withDeviceRules(linuxResources(cfg.GetLinux().GetResources()), spec.Linux.Resources)
	if s.cfg.PidsLimit > 0 {
		spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &s.cfg.PidsLimit}
	}
	spec.Process.OOMScoreAdj = oomScoreAdj(cfg.GetLinux().GetResources())
	spec.Annotations = cfg.GetAnnotations()
	applyStdio(spec, cfg)
	return spec, nil
}

// processArgs is the command as Docker and kubelet define it: the config's
// command replaces the image entrypoint, the config's args replace the
// image cmd (and drop it when only the command is given).
func processArgs(cfg *runtimeapi.ContainerConfig, img rootfs.ImageConfig) ([]string, error) {
	var args []string
	switch {
	case len(cfg.GetCommand()) > 0:
		args = append(append(args, cfg.GetCommand()...), cfg.GetArgs()...)
	case len(cfg.GetArgs()) > 0:
		args = append(append(args, img.Entrypoint...), cfg.GetArgs()...)
	default:
		args = append(append(args, img.Entrypoint...), img.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified and the image has none: %w", errInvalidArgument)
	}
	return args, nil
}

// mergeEnv layers environments: defaults, then the image's, then the
// config's; a later key replaces an earlier one in place.
func mergeEnv(defaults, image []string, config []*runtimeapi.KeyValue, hostname string) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range defaults {
		set(kv)
	}
	set("HOSTNAME=" + hostname)
	for _, kv := range image {
		set(kv)
	}
	for _, kv := range config {
		set(kv.GetKey() + "=" + string(kv.GetValue()))
	}
	return out
}

// podFileMounts bind-mounts the pod's hostname, hosts and resolv.conf,
// unless the config mounts something there itself.
func (s *Server) podFileMounts(podID string, cfg *runtimeapi.ContainerConfig) []specs.Mount {
	taken := map[string]bool{}
	for _, m := range cfg.GetMounts() {
		taken[m.GetContainerPath()] = true
	}
	var out []specs.Mount
	for _, f := range []struct{ name, dest string }{
		{hostnameFile, "/etc/hostname"}, {hostsFile, "/etc/hosts"}, {resolvConfFile, "/etc/resolv.conf"},
	} {
		if taken[f.dest] {
			continue
		}
		out = append(out, specs.Mount{
			Destination: f.dest,
			Type:        "bind",
			Source:      s.rt.PodFilePath(podID, f.name),
			Options:     []string{"rbind", "rprivate", "rw"},
		})
	}
	return out
}

// linuxResources maps CRI resources to OCI ones; unset values stay unset.
func linuxResources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := &specs.LinuxResources{}
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		out.Memory = &specs.LinuxMemory{Limit: &v}
		if sw := r.GetMemorySwapLimitInBytes(); sw > 0 {
			out.Memory.Swap = &sw
		}
	}
	cpu := &specs.LinuxCPU{}
	hasCPU := false
	if v := uint64(r.GetCpuShares()); v > 0 {
		cpu.Shares, hasCPU = &v, true
	}
	// A negative quota is "no limit": kubelet sends -1 to lift a
	// container's cpu limit in place. Zero leaves the quota as it is.
	if v := max(r.GetCpuQuota(), -1); v != 0 {
		cpu.Quota, hasCPU = &v, true
	}
	if v := uint64(r.GetCpuPeriod()); v > 0 {
		cpu.Period, hasCPU = &v, true
	}
	if r.GetCpusetCpus() != "" {
		cpu.Cpus, hasCPU = r.GetCpusetCpus(), true
	}
	if r.GetCpusetMems() != "" {
		cpu.Mems, hasCPU = r.GetCpusetMems(), true
	}
	if hasCPU {
		out.CPU = cpu
	}
	for _, h := range r.GetHugepageLimits() {
		out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		out.Unified = r.GetUnified()
	}
	return out
}

// withDeviceRules returns res (possibly nil) with the devices cgroup rules
// of old (the default spec's, privileged's or the config's devices) and
// its pids limit (cubbyd's pids_limit): resources kubelet neither sets nor
// updates.
func withDeviceRules(res, old *specs.LinuxResources) *specs.LinuxResources {
	if res == nil {
		res = &specs.LinuxResources{}
	}
	if old != nil {
		res.Devices = old.Devices
		res.Pids = old.Pids
	}
	return res
}

// addDevices gives the container the config's host devices: the nodes in
// its /dev and rules allowing them in the devices cgroup.
func addDevices(spec *specs.Spec, devices []*runtimeapi.Device) error {
	if len(devices) == 0 {
		return nil
	}
	reqs := make([]sandbox.Device, 0, len(devices))
	for _, d := range devices {
		reqs = append(reqs, sandbox.Device{HostPath: d.GetHostPath(), ContainerPath: d.GetContainerPath(), Permissions: d.GetPermissions()})
	}
	nodes, rules, err := sandbox.ResolveDevices(reqs)
	if err != nil {
		if errors.Is(err, sandbox.ErrBadDevice) {
			return fmt.Errorf("%v: %w", err, errInvalidArgument)
		}
		return err
	}
	spec.Linux.Devices = append(spec.Linux.Devices, nodes...)
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, rules...)
	return nil
}

// oomScoreAdj is the container's oom_score_adj, always set: 0 when the
// config names none. Left unset, the container would inherit cubbyd's own
// score (-999 under the systemd unit) through the keeper and pod init and be
// the last process the OOM killer picks.
func oomScoreAdj(res *runtimeapi.LinuxContainerResources) *int {
	v := int(res.GetOomScoreAdj())
	return &v
}
