package server

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podWithNS(ns *runtimeapi.NamespaceOption) *pod {
	return &pod{id: "p1", config: &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
	}}}
}

func TestContainerNamespaces(t *testing.T) {
	newSpec := func() *specs.Spec {
		return &specs.Spec{
			Linux:  &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}}},
			Mounts: []specs.Mount{{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"}},
		}
	}
	for _, tc := range []struct {
		name       string
		pod, ctr   *runtimeapi.NamespaceOption
		wantNS     int
		wantErr    bool
		wantShmSrc string
	}{
		{name: "own pid", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}, wantNS: 2, wantShmSrc: "shm"},
		{name: "pod pid", pod: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}, wantNS: 1, wantShmSrc: "shm"},
		{name: "node pid", pod: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, wantNS: 1, wantShmSrc: "shm"},
		{name: "node pid in own-pid pod", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, wantErr: true},
		{name: "target without id", pod: &runtimeapi.NamespaceOption{}, ctr: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}, wantErr: true},
		{name: "host ipc", pod: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}, ctr: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER}, wantNS: 2, wantShmSrc: "/dev/shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec()
			s := &Server{objs: newObjects()}
			err := s.containerNamespaces(spec, podWithNS(tc.pod), tc.ctr)
			if tc.wantErr {
				if !errors.Is(err, errInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(spec.Linux.Namespaces) != tc.wantNS {
				t.Errorf("namespaces %+v, want %d", spec.Linux.Namespaces, tc.wantNS)
			}
			if spec.Mounts[0].Source != tc.wantShmSrc {
				t.Errorf("/dev/shm from %q, want %q", spec.Mounts[0].Source, tc.wantShmSrc)
			}
		})
	}
}

func TestValidatePodNamespaces(t *testing.T) {
	ok := []*runtimeapi.NamespaceOption{
		nil,
		{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE},
		{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	for _, ns := range ok {
		if err := validatePodNamespaces(ns); err != nil {
			t.Errorf("%v: %v", ns, err)
		}
	}
	bad := []*runtimeapi.NamespaceOption{
		{Pid: runtimeapi.NamespaceMode_TARGET},
		{Network: runtimeapi.NamespaceMode_CONTAINER},
		{Ipc: runtimeapi.NamespaceMode_TARGET},
	}
	for _, ns := range bad {
		if err := validatePodNamespaces(ns); !errors.Is(err, errInvalidArgument) {
			t.Errorf("%v: err = %v, want invalid argument", ns, err)
		}
	}
}

func TestParseSysctl(t *testing.T) {
	for in, want := range map[string][2]string{ // dotted, path
		"net.ipv4.ip_forward":              {"net.ipv4.ip_forward", "net/ipv4/ip_forward"},
		"net/ipv4/ip_forward":              {"net.ipv4.ip_forward", "net/ipv4/ip_forward"},
		"net/ipv4/conf/eth0.100/rp_filter": {"net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"},
		"net.ipv4.conf.eth0/100.rp_filter": {"net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"},
		"kernel.shm_rmid_forced":           {"kernel.shm_rmid_forced", "kernel/shm_rmid_forced"},
	} {
		n, err := parseSysctl(in)
		if err != nil {
			t.Errorf("parseSysctl(%q): %v", in, err)
			continue
		}
		if got := [2]string{n.dotted(), n.path()}; got != want {
			t.Errorf("parseSysctl(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "net/../kernel/core_pattern", "net.ipv4..x", "net.ipv4.", ".net.ipv4", "net//ipv4", "net/./ipv4/ip_forward",
		"net./.kernel.core_pattern", "net.//.kernel.core_pattern", "net/ipv4/", "/net/ipv4/ip_forward"} {
		_, err := parseSysctl(bad)
		if err == nil || !errors.Is(err, errInvalidArgument) {
			t.Errorf("parseSysctl(%q) = %v, want invalid argument", bad, err)
			continue
		}
		if bad != "" && !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("parseSysctl(%q): error %q does not name it", bad, err)
		}
	}
}

func TestPodSysctlsSameNameTwice(t *testing.T) {
	_, err := podSysctls(map[string]string{"net.ipv4.ip_forward": "1", "net/ipv4/ip_forward": "0"}, podNamespaces{})
	if !errors.Is(err, errInvalidArgument) {
		t.Errorf("two spellings of one sysctl: %v, want invalid argument", err)
	}
}

func TestValidateSysctls(t *testing.T) {
	for _, tc := range []struct {
		key     string
		ns      podNamespaces
		wantErr bool
	}{
		{key: "net.ipv4.ip_local_port_range"},
		{key: "net/ipv4/conf/all/rp_filter"},
		{key: "kernel.shm_rmid_forced"},
		{key: "kernel.msgmax"},
		{key: "kernel.sem"},
		{key: "fs.mqueue.msg_max"},
		{key: "net.ipv4.ip_forward", ns: podNamespaces{hostNetwork: true}, wantErr: true},
		{key: "kernel.shmmax", ns: podNamespaces{hostIPC: true}, wantErr: true},
		{key: "net.core.somaxconn", ns: podNamespaces{hostIPC: true}},
		{key: "kernel.hostname", wantErr: true},
		{key: "vm.swappiness", wantErr: true},
		{key: "net..x", wantErr: true},
		{key: "net/../kernel/core_pattern", wantErr: true},
		{key: "net.ipv4..x", wantErr: true},
		{key: "", wantErr: true},
	} {
		err := validateSysctls(map[string]string{tc.key: "1"}, tc.ns)
		if tc.wantErr != (err != nil) {
			t.Errorf("%q %+v: err = %v, want error %v", tc.key, tc.ns, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, errInvalidArgument) {
			t.Errorf("%q: err = %v, want invalid argument", tc.key, err)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]uint64{
		"500000": 500000, "10M": 10_000_000, "1Gi": 1 << 30, "1.5k": 1500, "100Ki": 102400, "0.5": 1, "1e6": 1_000_000,
	} {
		if got, err := parseQuantity(in); err != nil || got != want {
			t.Errorf("parseQuantity(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1M", "ten", "1X"} {
		if _, err := parseQuantity(bad); err == nil {
			t.Errorf("parseQuantity(%q) succeeded", bad)
		}
	}
}

func TestPodBandwidth(t *testing.T) {
	bw, err := podBandwidth(map[string]string{ingressBandwidthAnnotation: "10M"})
	if err != nil || bw == nil || bw.IngressRate != 10_000_000 || bw.EgressRate != 0 || bw.IngressBurst == 0 {
		t.Errorf("ingress only: %+v, %v", bw, err)
	}
	if bw, err := podBandwidth(map[string]string{"other": "x"}); bw != nil || err != nil {
		t.Errorf("no annotations: %+v, %v", bw, err)
	}
	if _, err := podBandwidth(map[string]string{egressBandwidthAnnotation: "fast"}); !errors.Is(err, errInvalidArgument) {
		t.Errorf("bad value: err = %v", err)
	}
}

func TestPodCgroupResources(t *testing.T) {
	if podCgroupResources(nil, nil) != nil {
		t.Error("no resources became limits")
	}
	r := podCgroupResources(
		&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, CpuShares: 10, CpuQuota: 5000, CpuPeriod: 50000},
		&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000},
	)
	if r.Memory == nil || *r.Memory.Limit != 160<<20 {
		t.Errorf("memory %+v, want 160Mi", r.Memory)
	}
	if r.CPU == nil || *r.CPU.Shares != 522 || *r.CPU.Quota != 60000 || *r.CPU.Period != 100000 {
		t.Errorf("cpu %+v, want shares 522, quota 60000 per 100000", r.CPU)
	}
	if r := podCgroupResources(nil, &runtimeapi.LinuxContainerResources{CpuQuota: -1}); r.CPU == nil || r.CPU.Quota == nil || *r.CPU.Quota != -1 {
		t.Errorf("a lifted pod cpu limit became cpu %+v, want quota -1", r.CPU)
	}
	// Overhead alone does not limit a pod whose resources are unlimited.
	if r := podCgroupResources(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}, &runtimeapi.LinuxContainerResources{}); r.Memory != nil {
		t.Errorf("overhead alone set memory %+v", r.Memory)
	}
}
