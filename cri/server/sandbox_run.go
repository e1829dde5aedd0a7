package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
	"cubby/cri/store"
	"cubby/netcni"
	"cubby/sandbox"
)

// initCgroupName is the pod init's leaf cgroup under the pod cgroup; like
// containerd's pause container it is named after the sandbox id.
func initCgroup(podCgroup, id string) string { return path.Join(podCgroup, id) }

// RunPodSandbox starts a pod: its cgroup, its init in new namespaces, its
// network. Each step that makes something pushes its undo; the record is on
// disk before the first of them.
func (s *Server) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := r.GetConfig()
	if err := validatePodConfig(cfg); err != nil {
		return nil, err
	}
	if err := checkRuntimeHandler(r.GetRuntimeHandler()); err != nil {
		return nil, err
	}
	cfgBytes, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode pod config: %w", err)
	}

	id := newID()
	// kubelet's systemd driver names the pod cgroup as a slice.
	cgroupParent, err := cgroupmgr.ExpandSlice(cfg.GetLinux().GetCgroupParent())
	if err != nil {
		return nil, fmt.Errorf("cgroup_parent: %w: %w", err, errInvalidArgument)
	}
	if cgroupParent == "" {
		cgroupParent = path.Join(s.cfg.DefaultCgroupParent, id)
	}
	p := &pod{
		id:        id,
		name:      podName(cfg.Metadata),
		config:    cfg,
		created:   make(chan struct{}),
		lifecycle: newPodLifecycle(),
		rec: store.Pod{
			ID:             id,
			Config:         cfgBytes,
			CreatedAt:      time.Now().UnixNano(),
			State:          store.PodCreating,
			RuntimeHandler: r.GetRuntimeHandler(),
			CgroupParent:   cgroupParent,
			InitCgroup:     initCgroup(cgroupParent, id),
		},
	}
	if existing, ok := s.objs.pods.add(p); !ok {
		return s.retriedPod(ctx, existing, p.name)
	}
	defer close(p.created)

	if err := s.startPod(ctx, p); err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: %w", p.name, err)
	}
	s.monitorPod(p)
	s.fault(faultPodDone)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// retriedPod answers a RunPodSandbox for a name that is taken: kubelet
// retries a call that outlived its deadline, so hand back the pod once its
// first RunPodSandbox has finished.
func (s *Server) retriedPod(ctx context.Context, p *pod, name string) (*runtimeapi.RunPodSandboxResponse, error) {
	select {
	case <-p.created:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for pod %q being created: %w", name, ctx.Err())
	}
	if p.status().State == store.PodReady {
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: p.id}, nil
	}
	return nil, fmt.Errorf("pod sandbox name %q is reserved for %q: %w", name, p.id, errAlreadyExists)
}

func (s *Server) startPod(ctx context.Context, p *pod) (err error) {
	if err := s.db.PutPod(p.status()); err != nil {
		s.objs.pods.remove(p)
		return err
	}
	var undo undoStack
	defer func() {
		if err == nil {
			return
		}
		if uerr := undo.run(); uerr != nil {
			// Keep the record: StopPodSandbox/RemovePodSandbox finish the job.
			s.log.Error("cleanup of failed pod incomplete", "pod", p.id, "error", uerr)
			_ = p.update(s.db, func(r *store.Pod) { r.State = store.PodNotReady })
			return
		}
		_ = s.db.DeletePod(p.id)
		s.objs.pods.remove(p)
	}()
	s.fault(faultPodRecorded)
	rec := p.status()
	ownCgroup := ownsPodCgroup(p.config)

	steps := newStepTimer(s.metrics.podStartStep)
	defer func() { s.log.Debug("pod start steps", "pod", p.id, "error", err, "steps", steps) }()

	// 1. Cgroups: the pod's and the pod init's leaf inside it.
	var podRes *specs.LinuxResources
	if ownCgroup {
		podRes = podCgroupResources(p.config.GetLinux().GetOverhead(), p.config.GetLinux().GetResources())
	}
	if err := s.cgroups.Create(rec.CgroupParent, podRes); err != nil {
		return fmt.Errorf("create pod cgroup: %w", err)
	}
	if ownCgroup {
		undo.push("pod cgroup", func(context.Context) error { return s.cgroups.Delete(rec.CgroupParent) })
	}
	if err := s.cgroups.Create(rec.InitCgroup, nil); err != nil {
		return fmt.Errorf("create pod init cgroup: %w", err)
	}
	undo.push("pod init cgroup", func(context.Context) error { return s.cgroups.Delete(rec.InitCgroup) })
	procs, err := s.cgroups.ProcsFiles(rec.InitCgroup)
	if err != nil {
		return err
	}

	steps.done("cgroups")
	s.fault(faultPodCgroups)

	// 2. Files the containers bind-mount: hostname, hosts, resolv.conf.
	undo.push("pod directory", func(context.Context) error { return s.rt.RemovePod(p.id) })
	if err := s.writePodFiles(p); err != nil {
		return err
	}

	steps.done("files")
	s.fault(faultPodFiles)

	// 3. The pod init, in new namespaces pinned to files.
	hostNS := namespacesOf(p.config)
	sysctls, err := podSysctls(p.config.GetLinux().GetSysctls(), hostNS)
	if err != nil {
		return err
	}
	started, err := s.rt.StartPod(ctx, sandbox.PodOptions{
		ID:               p.id,
		Hostname:         p.config.GetHostname(), // empty: keep the node's
		HostNetwork:      hostNS.hostNetwork,
		HostIPC:          hostNS.hostIPC,
		HostPID:          hostNS.hostPID,
		Sysctls:          sysctls,
		CgroupProcsFiles: procs,
	})
	if err != nil {
		return err
	}
	undo.push("pod init", func(ctx context.Context) error {
		return errors.Join(s.rt.StopPod(ctx, p.id, started.Pid), s.rt.ReleaseNamespaces(p.id))
	})
	s.fault(faultPodInit)
	nsPaths := map[string]string{}
	for t, path := range started.Namespaces {
		nsPaths[string(t)] = path
	}
	netns := started.Namespaces[specs.NetworkNamespace]
	if err := p.update(s.db, func(r *store.Pod) {
		r.Pid = started.Pid
		r.Namespaces = nsPaths
	}); err != nil {
		return err
	}

	steps.done("pod_init")

	// 4. The network: recorded above, so a crash from here on still tears it
	// down. A host-network pod has none of its own: no CNI.
	if hostNS.hostNetwork {
		steps.done("network")
		return p.update(s.db, func(r *store.Pod) { r.State = store.PodReady })
	}
	podNet := podNetwork(p.id, p.config, netns)
	undo.push("pod network", func(ctx context.Context) error { return s.net.Teardown(ctx, podNet) })
	result, err := s.net.Setup(ctx, podNet)
	if err != nil {
		return err
	}
	s.fault(faultPodNetwork)
	ips := make([]string, 0, len(result.IPs))
	for _, ip := range result.IPs {
		ips = append(ips, ip.String())
	}
	steps.done("network")
	defer steps.done("record")
	return p.update(s.db, func(r *store.Pod) {
		r.IPs = ips
		r.State = store.PodReady
	})
}

// podNetwork is the CNI view of pod id.
func podNetwork(id string, cfg *runtimeapi.PodSandboxConfig, netns string) netcni.PodNetwork {
	m := cfg.GetMetadata()
	pn := netcni.PodNetwork{ID: id, Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUid(), NetNSPath: netns}
	pn.Bandwidth, _ = podBandwidth(cfg.GetAnnotations()) // checked by validatePodConfig
	if dns := cfg.GetDnsConfig(); dns != nil {
		pn.DNS = &netcni.DNS{Servers: dns.GetServers(), Searches: dns.GetSearches(), Options: dns.GetOptions()}
	}
	for _, pm := range cfg.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		pn.PortMappings = append(pn.PortMappings, netcni.PortMapping{
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
			Protocol:      protocolName(pm.GetProtocol()),
			HostIP:        pm.GetHostIp(),
		})
	}
	return pn
}

func protocolName(p runtimeapi.Protocol) string {
	switch p {
	case runtimeapi.Protocol_UDP:
		return "udp"
	case runtimeapi.Protocol_SCTP:
		return "sctp"
	default:
		return "tcp"
	}
}

// podHostname is the pod's hostname: the config's, else the node's. A pod
// without one keeps the hostname that its new UTS namespace inherits from
// the node, as with containerd and CRI-O.
func podHostname(cfg *runtimeapi.PodSandboxConfig) string {
	if h := cfg.GetHostname(); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

func validatePodConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return fmt.Errorf("pod sandbox config is missing: %w", errInvalidArgument)
	}
	m := cfg.GetMetadata()
	if m == nil {
		return fmt.Errorf("pod sandbox metadata is missing: %w", errInvalidArgument)
	}
	if m.GetName() == "" {
		return fmt.Errorf("pod sandbox metadata.name is empty: %w", errInvalidArgument)
	}
	if m.GetNamespace() == "" {
		return fmt.Errorf("pod sandbox metadata.namespace is empty: %w", errInvalidArgument)
	}
	if err := validatePodIdentity(m); err != nil {
		return err
	}
	if err := validatePodNamespaces(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()); err != nil {
		return err
	}
	if h := cfg.GetHostname(); len(h) > 64 && !namespacesOf(cfg).hostNetwork {
		return fmt.Errorf("hostname %q is longer than 64 bytes: %w", h, errInvalidArgument)
	}
	if _, err := podBandwidth(cfg.GetAnnotations()); err != nil {
		return err
	}
	return validateSysctls(cfg.GetLinux().GetSysctls(), namespacesOf(cfg))
}
