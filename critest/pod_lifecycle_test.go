package critest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodLifecycle is the walkthrough of the acceptance: a pod with
// two containers from run to removal, checked through the CRI and, from the
// host, for the namespaces, cgroup, network and cleanup the CRI implies.
func TestPodLifecycle(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	pullImage(t, env, reg.Ref)

	// Registered before the pod exists, so it runs after the pod is removed.
	cgroupParent := "/critest-" + framework.RandomHex(4)
	t.Cleanup(func() { framework.RemoveCgroup(t, cgroupParent) })

	logDir := t.TempDir()
	pod := podConfig("lifecycle", logDir)
	pod.Hostname = "critest-host"
	pod.Linux.CgroupParent = cgroupParent

	start := time.Now()
	podID := runPod(t, env, pod)
	t.Logf("RunPodSandbox took %s", time.Since(start))

	// Pod status.
	pst, pinfo := podStatus(t, env, podID, true)
	checkPodStatus(t, pst, pod)
	podIP := pst.GetNetwork().GetIp()
	podV := verboseInfo(t, "pod "+podID, pinfo)
	podProc, err := framework.ProcessOf(podV.Pid)
	if err != nil {
		t.Fatalf("pod init %d: %v", podV.Pid, err)
	}
	podNetnsFile := podV.NamespacePath(specs.NetworkNamespace)
	if podNetnsFile == "" {
		t.Errorf("pod runtimeSpec has no network namespace path")
	}

	checkPodList(t, env, podID, pod)

	// The long-running container.
	script := "hostname; cat /proc/1/cmdline; echo; sleep 3600"
	ccfg := containerConfig("sleeper", reg.Ref, "c1.log", "sh", "-c", script)
	ccfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	start = time.Now()
	cid := createContainer(t, env, podID, pod, ccfg)
	t.Logf("CreateContainer took %s", time.Since(start))
	start = time.Now()
	startContainer(t, env, cid)
	t.Logf("StartContainer took %s", time.Since(start))

	logPath := filepath.Join(logDir, "c1.log")
	entries := readLogUntil(t, logPath, func(e []framework.LogEntry) bool { return len(e) >= 2 })
	checkSleeperLog(t, logPath, entries, script)

	cst, cinfo := containerStatus(t, env, cid, true)
	if cst.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %q: state %s, want RUNNING", cid, cst.GetState())
	}
	if cst.GetStartedAt() == 0 {
		t.Errorf("container %q: started_at not set", cid)
	}
	if got := cst.GetLogPath(); got != logPath {
		t.Errorf("container %q: log_path %q, want %q", cid, got, logPath)
	}
	cV := verboseInfo(t, "container "+cid, cinfo)
	ctrProc, err := framework.ProcessOf(cV.Pid)
	if err != nil {
		t.Fatalf("container process %d: %v", cV.Pid, err)
	}

	checkPidNamespace(t, cV.Pid)
	vethIndex := checkNetwork(t, cV.Pid, podV.Pid, podIP)
	cgroupDir := checkMemoryCgroup(t, cV.Pid, cgroupParent, 64<<20)

	// A container that fails.
	failCfg := containerConfig("failer", reg.Ref, "c2.log", "sh", "-c", "exit 3")
	failID := createContainer(t, env, podID, pod, failCfg)
	startContainer(t, env, failID)
	fst := waitContainerState(t, env, failID, runtimeapi.ContainerState_CONTAINER_EXITED)
	if fst.GetExitCode() != 3 {
		t.Errorf("container %q: exit code %d, want 3", failID, fst.GetExitCode())
	}
	if fst.GetReason() != "Error" {
		t.Errorf("container %q: reason %q, want Error", failID, fst.GetReason())
	}
	if fst.GetStartedAt() == 0 || fst.GetFinishedAt() < fst.GetStartedAt() {
		t.Errorf("container %q: finished_at %d before started_at %d", failID, fst.GetFinishedAt(), fst.GetStartedAt())
	}

	checkContainerList(t, env, podID, cid, failID)

	// Stop the sleeper. sh as PID 1 ignores SIGTERM: the runtime must
	// escalate to SIGKILL after the timeout.
	start = time.Now()
	if _, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 2}); err != nil {
		t.Fatalf("StopContainer %q: %v", cid, err)
	}
	t.Logf("StopContainer (timeout 2s) took %s", time.Since(start))
	if st, _ := containerStatus(t, env, cid, false); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container %q after StopContainer: state %s, want EXITED", cid, st.GetState())
	}

	// Tear down through the CRI, then look for leftovers from the host.
	for _, id := range []string{cid, failID} {
		if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer %q: %v", id, err)
		}
	}
	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("StopPodSandbox %q: %v", podID, err)
	}
	if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("RemovePodSandbox %q: %v", podID, err)
	}

	checkNoMounts(t, podID, cid, failID)
	waitGone(t, "container process", ctrProc)
	waitGone(t, "pod init", podProc)
	if cgroupDir != "" {
		if _, err := os.Stat(cgroupDir); !os.IsNotExist(err) {
			t.Errorf("container cgroup %s still exists after removal (%v)", cgroupDir, err)
		}
	}
	if vethIndex != 0 {
		links, err := framework.HostLinks()
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := links[vethIndex]; ok {
			t.Errorf("host veth %d (%s) of the pod still exists", vethIndex, name)
		}
	}
	if podNetnsFile != "" {
		if _, err := os.Lstat(podNetnsFile); !os.IsNotExist(err) {
			t.Errorf("pod netns file %s still exists (%v)", podNetnsFile, err)
		}
	}
}

func checkPodStatus(t *testing.T, st *runtimeapi.PodSandboxStatus, cfg *runtimeapi.PodSandboxConfig) {
	t.Helper()
	if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod %q: state %s, want READY", st.GetId(), st.GetState())
	}
	if ip := st.GetNetwork().GetIp(); net.ParseIP(ip) == nil {
		t.Errorf("pod %q: ip %q is not an IP", st.GetId(), ip)
	}
	if st.GetCreatedAt() == 0 {
		t.Errorf("pod %q: created_at not set", st.GetId())
	}
	got, want := st.GetMetadata(), cfg.GetMetadata()
	if got.GetName() != want.GetName() || got.GetUid() != want.GetUid() ||
		got.GetNamespace() != want.GetNamespace() || got.GetAttempt() != want.GetAttempt() {
		t.Errorf("pod %q: metadata %v, want %v", st.GetId(), got, want)
	}
	for k, v := range cfg.GetLabels() {
		if st.GetLabels()[k] != v {
			t.Errorf("pod %q: label %s = %q, want %q", st.GetId(), k, st.GetLabels()[k], v)
		}
	}
	for k, v := range cfg.GetAnnotations() {
		if st.GetAnnotations()[k] != v {
			t.Errorf("pod %q: annotation %s = %q, want %q", st.GetId(), k, st.GetAnnotations()[k], v)
		}
	}
}

func checkPodList(t *testing.T, env *framework.Env, podID string, cfg *runtimeapi.PodSandboxConfig) {
	t.Helper()
	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	notReady := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	tests := []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   bool // whether podID is listed
		only   bool // whether it must be the only one
	}{
		{"by id", &runtimeapi.PodSandboxFilter{Id: podID}, true, true},
		{"by state READY", &runtimeapi.PodSandboxFilter{State: ready}, true, false},
		{"by state NOTREADY", &runtimeapi.PodSandboxFilter{State: notReady}, false, false},
		{"by id and NOTREADY", &runtimeapi.PodSandboxFilter{Id: podID, State: notReady}, false, false},
		{"by labels", &runtimeapi.PodSandboxFilter{LabelSelector: cfg.GetLabels()}, true, false},
		{"by other label value", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelName: "no-such-pod"}}, false, false},
	}
	for _, tt := range tests {
		resp, err := env.RuntimeService().ListPodSandbox(framework.Context(t), &runtimeapi.ListPodSandboxRequest{Filter: tt.filter})
		if err != nil {
			t.Errorf("ListPodSandbox %s: %v", tt.name, err)
			continue
		}
		ids := podIDs(resp.GetItems())
		if slices.Contains(ids, podID) != tt.want || (tt.only && len(ids) != 1) {
			t.Errorf("ListPodSandbox %s: got %q, want pod %q listed=%v only=%v", tt.name, ids, podID, tt.want, tt.only)
		}
	}
}

func checkContainerList(t *testing.T, env *framework.Env, podID, running, exited string) {
	t.Helper()
	state := func(s runtimeapi.ContainerState) *runtimeapi.ContainerStateValue {
		return &runtimeapi.ContainerStateValue{State: s}
	}
	tests := []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string // exactly these, in any order
	}{
		{"by id", &runtimeapi.ContainerFilter{Id: running}, []string{running}},
		{"by pod", &runtimeapi.ContainerFilter{PodSandboxId: podID}, []string{running, exited}},
		{"by pod and RUNNING", &runtimeapi.ContainerFilter{PodSandboxId: podID, State: state(runtimeapi.ContainerState_CONTAINER_RUNNING)}, []string{running}},
		{"by pod and EXITED", &runtimeapi.ContainerFilter{PodSandboxId: podID, State: state(runtimeapi.ContainerState_CONTAINER_EXITED)}, []string{exited}},
		{"by pod and label", &runtimeapi.ContainerFilter{PodSandboxId: podID, LabelSelector: map[string]string{labelName: "failer"}}, []string{exited}},
		{"by unknown pod", &runtimeapi.ContainerFilter{PodSandboxId: "no-such-pod"}, nil},
	}
	for _, tt := range tests {
		resp, err := env.RuntimeService().ListContainers(framework.Context(t), &runtimeapi.ListContainersRequest{Filter: tt.filter})
		if err != nil {
			t.Errorf("ListContainers %s: %v", tt.name, err)
			continue
		}
		got := containerIDs(resp.GetContainers())
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListContainers %s: got %q, want %q", tt.name, got, want)
		}
	}
}

// checkSleeperLog checks the first two lines of the sleeper's CRI log: the
// pod hostname and PID 1's command line (NUL-separated arguments).
func checkSleeperLog(t *testing.T, path string, entries []framework.LogEntry, script string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	if ts, rest, _ := strings.Cut(first, " "); rest != "stdout F critest-host" {
		t.Errorf("log line 1 = %q, want \"<RFC3339Nano> stdout F critest-host\"", first)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("log line 1 timestamp: %v", err)
	}
	if e := entries[1]; e.Stream != "stdout" {
		t.Errorf("log line 2 on %s, want stdout", e.Stream)
	}
	args := strings.Split(strings.TrimRight(entries[1].Content, "\x00"), "\x00")
	if want := []string{"sh", "-c", script}; !slices.Equal(args, want) {
		t.Errorf("PID 1 cmdline in the container = %q, want %q (is the container PID 1 in its own pid namespace?)", args, want)
	}
}

// checkPidNamespace checks from the host that pid is PID 1 of a pid
// namespace of its own.
func checkPidNamespace(t *testing.T, pid int) {
	t.Helper()
	nspid, err := framework.StatusField(pid, "NSpid")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(nspid); len(f) < 2 || f[len(f)-1] != "1" {
		t.Errorf("container process %d: NSpid %q, want it to end in 1", pid, nspid)
	}
	host, err := framework.NamespaceOf(0, "pid")
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := framework.NamespaceOf(pid, "pid"); err != nil || ns == host {
		t.Errorf("container process %d: pid namespace %q (%v), want one other than the host's %q", pid, ns, err, host)
	}
}

// checkNetwork checks that the container shares the pod's network
// namespace, that it is not the host's, and that the pod IP is on its eth0.
// It returns the ifindex of eth0's host-side peer (0 when unknown).
func checkNetwork(t *testing.T, ctrPid, podPid int, podIP string) int {
	t.Helper()
	host, err := framework.NamespaceOf(0, "net")
	if err != nil {
		t.Fatal(err)
	}
	podNS, err := framework.NamespaceOf(podPid, "net")
	if err != nil {
		t.Fatalf("pod init %d: %v", podPid, err)
	}
	ctrNS, err := framework.NamespaceOf(ctrPid, "net")
	if err != nil {
		t.Fatalf("container process %d: %v", ctrPid, err)
	}
	if ctrNS != podNS {
		t.Errorf("container netns %s differs from the pod's %s", ctrNS, podNS)
	}
	if podNS == host {
		t.Errorf("pod netns %s is the host's", podNS)
	}
	nsPath := filepath.Join("/proc", itoa(ctrPid), "ns", "net")
	addrs, err := framework.IPv4Addrs(nsPath, "eth0")
	if err != nil {
		t.Errorf("addresses of eth0 in the pod: %v", err)
	} else if !slices.Contains(addrs, podIP) {
		t.Errorf("eth0 in the pod has %q, want pod IP %s", addrs, podIP)
	}
	idx, err := framework.PeerIndex(nsPath, "eth0")
	if err != nil {
		t.Errorf("host peer of the pod's eth0: %v", err)
		return 0
	}
	links, err := framework.HostLinks()
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := links[idx]; ok {
		t.Logf("pod eth0 peers with host link %d (%s)", idx, name)
	} else {
		t.Errorf("pod eth0's peer %d is not a host link", idx)
	}
	return idx
}

// checkMemoryCgroup checks that pid's memory cgroup is under parent and
// limited to limit bytes. It returns the cgroup's directory.
func checkMemoryCgroup(t *testing.T, pid int, parent string, limit int64) string {
	t.Helper()
	path, file, err := framework.MemoryCgroup(pid)
	if err != nil {
		t.Errorf("memory cgroup of %d: %v", pid, err)
		return ""
	}
	if !strings.HasPrefix(path, parent+"/") {
		t.Errorf("container cgroup %s is not under the pod's cgroup_parent %s", path, parent)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("memory limit of %s: %v", path, err)
	} else if got := strings.TrimSpace(string(b)); got != itoa(int(limit)) {
		t.Errorf("%s = %s, want %d", file, got, limit)
	}
	return filepath.Dir(file)
}

// checkNoMounts checks that no mount of the test process's namespace
// mentions any of ids.
func checkNoMounts(t *testing.T, ids ...string) {
	t.Helper()
	mounts, err := framework.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		for _, id := range ids {
			if strings.Contains(m.MountPoint, id) || strings.Contains(m.Root, id) || strings.Contains(m.Source, id) {
				t.Errorf("mount %s (%s, root %s) of %q remains after removal", m.MountPoint, m.FSType, m.Root, id)
			}
		}
	}
}

// waitGone waits for p to leave the process table (a zombie still counts).
func waitGone(t *testing.T, what string, p framework.Process) {
	t.Helper()
	err := framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		exists, err := p.Exists()
		return !exists, err
	})
	if err != nil {
		t.Errorf("%s %d still exists after removal: %v", what, p.Pid, err)
	}
}
