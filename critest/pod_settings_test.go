package critest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodSysctls sets namespaced sysctls on a pod and reads them from
// inside its container; sysctls that would change the node are refused.
func TestPodSysctls(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	pod := podConfig("sysctl", t.TempDir())
	pod.Linux.Sysctls = map[string]string{
		"kernel.shm_rmid_forced":       "1",
		"net.ipv4.ip_local_port_range": "20000 30000",
		"net/ipv4/ping_group_range":    "0 2147483647",
	}
	podID := runPod(t, env, pod)
	lines, _, _ := probe(t, env, podID, pod, reg.Ref, "c", nil,
		"cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/ping_group_range")
	want := []string{"1", "20000\t30000", "0\t2147483647"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("inside: %q, want %q", lines, want)
	}
	// The node's own values are untouched.
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); strings.TrimSpace(string(b)) == "20000\t30000" {
		t.Errorf("node's ip_local_port_range was changed")
	}

	for _, tc := range []struct {
		name   string
		ns     *runtimeapi.NamespaceOption
		sysctl string
	}{
		{"not namespaced", nil, "vm.swappiness"},
		{"net with host network", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}, "net.ipv4.ip_forward"},
		{"ipc with host ipc", &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}, "kernel.shmmax"},
	} {
		bad := podConfig("badsysctl", t.TempDir())
		if tc.ns != nil {
			bad.Linux.SecurityContext.NamespaceOptions = tc.ns
		}
		bad.Linux.Sysctls = map[string]string{tc.sysctl: "1"}
		_, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: bad})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.sysctl) {
			t.Errorf("%s: err = %v, want InvalidArgument naming %s", tc.name, err, tc.sysctl)
		}
	}
	// A namespaced sysctl the kernel refuses fails the pod with its name.
	bad := podConfig("badvalue", t.TempDir())
	bad.Linux.Sysctls = map[string]string{"net.ipv4.no_such_sysctl": "1"}
	if _, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: bad}); err == nil || !strings.Contains(err.Error(), "no_such_sysctl") {
		t.Errorf("unknown net sysctl: err = %v, want an error naming it", err)
	}
}

// TestPodDNS checks the pod's resolv.conf from inside: the DNS config as
// given, or the node's without one.
func TestPodDNS(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	pod := podConfig("dns", t.TempDir())
	pod.DnsConfig = &runtimeapi.DNSConfig{
		Servers:  []string{"10.96.0.10", "fd00::10"},
		Searches: []string{"critest.svc.cluster.local", "svc.cluster.local"},
		Options:  []string{"ndots:5", "timeout:2"},
	}
	podID := runPod(t, env, pod)
	lines, _, _ := probe(t, env, podID, pod, reg.Ref, "c", nil, "cat /etc/resolv.conf")
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"nameserver 10.96.0.10", "nameserver fd00::10",
		"search critest.svc.cluster.local svc.cluster.local", "options ndots:5 timeout:2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("resolv.conf inside:\n%s\nlacks %q", got, want)
		}
	}

	plain := podConfig("nodns", t.TempDir())
	plainID := runPod(t, env, plain)
	lines, _, _ = probe(t, env, plainID, plain, reg.Ref, "c", nil, "cat /etc/resolv.conf")
	node, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skipf("node has no resolv.conf: %v", err)
	}
	want := strings.Split(strings.TrimRight(string(node), "\n"), "\n")
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("resolv.conf without a DNS config:\n%s\nwant the node's:\n%s", strings.Join(lines, "\n"), node)
	}
}

// TestPodCgroupParentSlice runs a pod whose cgroup_parent is in kubelet's
// systemd driver form and finds its container in the slice's cgroupfs path.
// Meant for runtimes on the cgroupfs driver that accept slice names (as
// cubby does); a systemd-driven runtime puts it in the same place.
func TestPodCgroupParentSlice(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	top := "critest" + framework.RandomHex(4)
	t.Cleanup(func() { framework.RemoveCgroup(t, "/"+top+".slice") })
	pod := podConfig("slice", t.TempDir())
	pod.Linux.CgroupParent = top + "-burstable-pod" + framework.RandomHex(4) + ".slice"
	podID := runPod(t, env, pod)
	_, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", nil, "true")
	path, _, err := framework.MemoryCgroup(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := "/" + top + ".slice/" + top + "-burstable.slice/" + pod.Linux.CgroupParent + "/"
	if !strings.HasPrefix(path, want) {
		t.Errorf("container cgroup %s, want it under %s", path, want)
	}

	bad := podConfig("badslice", t.TempDir())
	bad.Linux.CgroupParent = "a--b.slice"
	if _, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: bad}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("cgroup_parent %q: err = %v, want InvalidArgument", bad.Linux.CgroupParent, err)
	}
}

// TestRuntimeHandler: the default handler works and is listed in Status;
// an unknown handler is refused with a message naming it.
func TestRuntimeHandler(t *testing.T) {
	env := suite.NewEnv(t)
	rs := env.RuntimeService()
	st, err := rs.Status(framework.Context(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range st.GetRuntimeHandlers() {
		found = found || h.GetName() == ""
	}
	if !found {
		t.Errorf("Status lists runtime handlers %v, want the default (\"\") among them", st.GetRuntimeHandlers())
	}

	pod := podConfig("handler", t.TempDir())
	podID := runPod(t, env, pod)
	if ps, _ := podStatus(t, env, podID, false); ps.GetRuntimeHandler() != "" {
		t.Errorf("pod runtime_handler %q, want \"\"", ps.GetRuntimeHandler())
	}
	bad := podConfig("badhandler", t.TempDir())
	_, err = rs.RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: bad, RuntimeHandler: "no-such-handler"})
	if err == nil || !strings.Contains(err.Error(), "no-such-handler") {
		t.Errorf("unknown handler: err = %v, want an error naming it", err)
	}
}

// TestPodResources: a pod whose cgroup the runtime makes (no cgroup_parent)
// is limited to its pod-level resources plus overhead, and
// UpdatePodSandboxResources resizes it live. kubelet-made pod cgroups are
// kubelet's to size, so this is cubby's own behaviour.
func TestPodResources(t *testing.T) {
	if suite.Options().External() {
		t.Skip("checks how cubby sizes the pod cgroups it makes; -endpoint given")
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	pod := podConfig("resources", t.TempDir())
	pod.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}
	pod.Linux.Overhead = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
	podID := runPod(t, env, pod)
	_, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", nil, "true")
	_, file, err := framework.MemoryCgroup(pid)
	if err != nil {
		t.Fatal(err)
	}
	// The container's cgroup is a child of the pod's.
	podLimit := filepath.Join(filepath.Dir(filepath.Dir(file)), filepath.Base(file))
	check := func(want int64) {
		t.Helper()
		b, err := os.ReadFile(podLimit)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(want, 10) {
			t.Errorf("%s = %s, want %d", podLimit, got, want)
		}
	}
	check(160 << 20)
	_, err = env.RuntimeService().UpdatePodSandboxResources(framework.Context(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID,
		Overhead:     pod.Linux.Overhead,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	check(288 << 20)
	if _, err := env.RuntimeService().UpdatePodSandboxResources(framework.Context(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nonexistent"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown pod: err = %v, want NotFound", err)
	}
}
