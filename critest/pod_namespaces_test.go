package critest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// probeDone ends every probe script's output.
const probeDone = "probe-done"

// probe runs script in a new container of pod podID (then keeps the
// container running) and returns its stdout lines and the container's host
// pid. Until ExecSync is there for every runtime, the container's own
// command is the way to look from inside.
func probe(t *testing.T, env *framework.Env, podID string, pod *runtimeapi.PodSandboxConfig, image, name string, ns *runtimeapi.NamespaceOption, script string) ([]string, int, string) {
	t.Helper()
	cfg := containerConfig(name, image, name+".log", "sh", "-c", script+"; echo "+probeDone+"; exec sleep 3600")
	if ns != nil {
		cfg.Linux.SecurityContext.NamespaceOptions = ns
	}
	id := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, id)
	entries := readLogUntil(t, filepath.Join(pod.GetLogDirectory(), name+".log"), func(e []framework.LogEntry) bool {
		return len(e) > 0 && e[len(e)-1].Content == probeDone
	})
	var lines []string
	for _, e := range entries[:len(entries)-1] {
		if e.Stream == "stdout" {
			lines = append(lines, e.Content)
		} else {
			t.Logf("%s stderr: %s", name, e.Content)
		}
	}
	_, info := containerStatus(t, env, id, true)
	return lines, verboseInfo(t, "container "+id, info).Pid, id
}

// sameNamespace tells whether pid is in the test process's (the node's)
// namespace of type typ.
func sameNamespace(t *testing.T, pid int, typ string) bool {
	t.Helper()
	host, err := framework.NamespaceOf(0, typ)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := framework.NamespaceOf(pid, typ)
	if err != nil {
		t.Fatalf("%s namespace of %d: %v", typ, pid, err)
	}
	return ns == host
}

func hostNS(network, ipc, pid runtimeapi.NamespaceMode) *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{Network: network, Ipc: ipc, Pid: pid}
}

// TestPodNamespaces runs pods in every namespace mode kubelet asks for and
// checks from inside the container and from the node which namespaces
// they got.
func TestPodNamespaces(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	node, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	const (
		POD       = runtimeapi.NamespaceMode_POD
		CONTAINER = runtimeapi.NamespaceMode_CONTAINER
		NODE      = runtimeapi.NamespaceMode_NODE
		TARGET    = runtimeapi.NamespaceMode_TARGET
	)

	t.Run("HostNetwork", func(t *testing.T) {
		pod := podConfig("hostnet", t.TempDir())
		pod.Hostname = "ignored-with-host-network"
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(NODE, POD, CONTAINER)
		podID := runPod(t, env, pod)
		lines, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", hostNS(NODE, POD, CONTAINER),
			"hostname; echo HOSTNAME=$HOSTNAME; cat /etc/hosts | wc -l; cat /proc/net/dev | grep -c ':'")
		if !sameNamespace(t, pid, "net") || !sameNamespace(t, pid, "uts") {
			t.Errorf("container %d is not in the node's net and uts namespaces", pid)
		}
		if sameNamespace(t, pid, "ipc") || sameNamespace(t, pid, "pid") || sameNamespace(t, pid, "mnt") {
			t.Errorf("container %d shares an ipc, pid or mount namespace with the node", pid)
		}
		hosts, _ := os.ReadFile("/etc/hosts")
		want := []string{node, "HOSTNAME=" + node, strconv.Itoa(strings.Count(string(hosts), "\n"))}
		if len(lines) < 4 || strings.Join(lines[:3], "|") != strings.Join(want, "|") {
			t.Errorf("inside: %q, want it to start with %q (node hostname, node /etc/hosts)", lines, want)
		}
		st, _ := podStatus(t, env, podID, false)
		if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod state %s", st.GetState())
		}
		if got := st.GetLinux().GetNamespaces().GetOptions().GetNetwork(); got != NODE {
			t.Errorf("status network mode %s, want NODE", got)
		}
		if h, _ := os.Hostname(); h != node {
			t.Errorf("node hostname changed to %q", h)
		}
	})

	t.Run("HostIPC", func(t *testing.T) {
		pod := podConfig("hostipc", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(POD, NODE, CONTAINER)
		podID := runPod(t, env, pod)
		_, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", hostNS(POD, NODE, CONTAINER), "true")
		if !sameNamespace(t, pid, "ipc") {
			t.Errorf("container %d is not in the node's ipc namespace", pid)
		}
		if sameNamespace(t, pid, "net") {
			t.Errorf("container %d is in the node's network namespace", pid)
		}
	})

	t.Run("HostPID", func(t *testing.T) {
		pod := podConfig("hostpid", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(POD, POD, NODE)
		podID := runPod(t, env, pod)
		_, pinfo := podStatus(t, env, podID, true)
		podPid := verboseInfo(t, "pod", pinfo).Pid
		lines, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", hostNS(POD, POD, NODE),
			"echo $$; cat /proc/1/comm; test -d /proc/"+strconv.Itoa(os.Getpid())+" && echo sees-node")
		if !sameNamespace(t, pid, "pid") {
			t.Errorf("container %d is not in the node's pid namespace", pid)
		}
		if !sameNamespace(t, podPid, "pid") {
			t.Errorf("pod init %d is not in the node's pid namespace", podPid)
		}
		init, _ := os.ReadFile("/proc/1/comm")
		// sh execs sleep: $$ is the container's host pid.
		want := []string{strconv.Itoa(pid), strings.TrimSpace(string(init)), "sees-node"}
		if strings.Join(lines, "|") != strings.Join(want, "|") {
			t.Errorf("inside: %q, want %q (host pids, the node's PID 1)", lines, want)
		}
	})

	t.Run("SharedPID", func(t *testing.T) {
		pod := podConfig("sharedpid", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(POD, POD, POD)
		podID := runPod(t, env, pod)
		_, a, _ := probe(t, env, podID, pod, reg.Ref, "a", hostNS(POD, POD, POD), "true")
		lines, b, _ := probe(t, env, podID, pod, reg.Ref, "b", hostNS(POD, POD, POD), "cat /proc/[0-9]*/comm | grep -c '^sleep$'")
		na, _ := framework.NamespaceOf(a, "pid")
		nb, _ := framework.NamespaceOf(b, "pid")
		if na != nb || sameNamespace(t, a, "pid") {
			t.Errorf("containers %d (%s) and %d (%s) do not share a pod pid namespace", a, na, b, nb)
		}
		if len(lines) != 1 || lines[0] != "1" {
			t.Errorf("b sees %q sleep processes, want 1 (a's)", lines)
		}
	})

	t.Run("TargetPID", func(t *testing.T) {
		pod := podConfig("targetpid", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(POD, POD, CONTAINER)
		podID := runPod(t, env, pod)
		_, a, aID := probe(t, env, podID, pod, reg.Ref, "target", hostNS(POD, POD, CONTAINER), "true")
		tns := hostNS(POD, POD, TARGET)
		tns.TargetId = aID
		lines, b, _ := probe(t, env, podID, pod, reg.Ref, "debug", tns, "cat /proc/1/cmdline | tr '\\0' ' '; echo")
		na, _ := framework.NamespaceOf(a, "pid")
		nb, _ := framework.NamespaceOf(b, "pid")
		if na != nb {
			t.Errorf("debug container %d is in pid namespace %s, want its target's %s", b, nb, na)
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "sleep 3600") && !strings.Contains(lines[0], probeDone) {
			t.Errorf("debug container sees PID 1 %q, want the target's command", lines)
		}
		// A container of another pod is not a valid target.
		other := podConfig("other", t.TempDir())
		otherID := runPod(t, env, other)
		cfg := containerConfig("bad", reg.Ref, "bad.log", "true")
		cfg.Linux.SecurityContext.NamespaceOptions = tns
		_, err := env.RuntimeService().CreateContainer(framework.Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: otherID, Config: cfg, SandboxConfig: other})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("target in another pod: err = %v, want InvalidArgument", err)
		}
	})

	t.Run("AllHost", func(t *testing.T) {
		pod := podConfig("allhost", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(NODE, NODE, NODE)
		podID := runPod(t, env, pod)
		_, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", hostNS(NODE, NODE, NODE), "true")
		for _, typ := range []string{"net", "uts", "ipc", "pid"} {
			if !sameNamespace(t, pid, typ) {
				t.Errorf("container %d is not in the node's %s namespace", pid, typ)
			}
		}
		if sameNamespace(t, pid, "mnt") {
			t.Errorf("container %d is in the node's mount namespace", pid)
		}
	})

	t.Run("InvalidModes", func(t *testing.T) {
		pod := podConfig("badmode", t.TempDir())
		pod.Linux.SecurityContext.NamespaceOptions = hostNS(POD, POD, TARGET)
		_, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("pod pid mode TARGET: err = %v, want InvalidArgument", err)
		}
	})
}

// TestHostPIDPodInitDies: in the node's pid namespace the containers do not
// die with the pod init. When it is killed, StopPodSandbox still leaves
// nothing of the pod running.
func TestHostPIDPodInitDies(t *testing.T) {
	if suite.Options().External() {
		t.Skip("kills the runtime's pod init; -endpoint given")
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	node := runtimeapi.NamespaceMode_NODE
	pod := podConfig("hostpid-kill", t.TempDir())
	pod.Linux.SecurityContext.NamespaceOptions = hostNS(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD, node)
	podID := runPod(t, env, pod)
	_, pinfo := podStatus(t, env, podID, true)
	podPid := verboseInfo(t, "pod", pinfo).Pid
	_, pid, _ := probe(t, env, podID, pod, reg.Ref, "c", hostNS(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD, node), "true")
	ctr, err := framework.ProcessOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(podPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := env.RuntimeService().StopPodSandbox(framework.Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if alive, err := ctr.Alive(); err != nil || alive {
		t.Errorf("container process %d alive=%v (%v) after StopPodSandbox", pid, alive, err)
	}
}

// TestPodNetnsOutlivesInit: the pod's network namespace is pinned to a file,
// so when the pod init dies the runtime still has it for CNI DEL, which
// removes the pod's veth; and nothing of the pod shows in `ip netns list`.
func TestPodNetnsOutlivesInit(t *testing.T) {
	if suite.Options().External() {
		t.Skip("kills the runtime's pod init; -endpoint given")
	}
	env := suite.NewEnv(t)
	pod := podConfig("netns-pin", t.TempDir())
	podID := runPod(t, env, pod)
	_, info := podStatus(t, env, podID, true)
	v := verboseInfo(t, "pod", info)
	nsFile := v.NamespacePath("network")
	if nsFile == "" {
		t.Fatal("pod info names no network namespace file")
	}
	peer, err := framework.PeerIndex(nsFile, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err == nil && strings.Contains(string(out), podID) {
		t.Errorf("ip netns list shows the pod: %s", out)
	}

	if err := syscall.Kill(v.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		st, _ := podStatus(t, env, podID, false)
		return st.GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY, nil
	})
	if err != nil {
		t.Errorf("pod not NOTREADY after its init died: %v", err)
	}
	// The namespace is still there, with the pod's interface in it.
	if idx, err := framework.PeerIndex(nsFile, "eth0"); err != nil || idx != peer {
		t.Errorf("pod eth0 after its init died: peer %d, %v; want %d", idx, err, peer)
	}
	if _, err := env.RuntimeService().StopPodSandbox(framework.Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	links, err := framework.HostLinks()
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := links[peer]; ok {
		t.Errorf("host veth %d (%s) of the pod remains after StopPodSandbox", peer, name)
	}
}

// TestPodInitDeathAfterRestart: a daemon that restarted (and so is not the
// pod init's parent any more) still notices the pod init dying.
func TestPodInitDeathAfterRestart(t *testing.T) {
	if suite.Options().External() {
		t.Skip("restarts the runtime; -endpoint given")
	}
	env := suite.NewEnv(t)
	podID := runPod(t, env, podConfig("restart-watch", t.TempDir()))
	_, info := podStatus(t, env, podID, true)
	pid := verboseInfo(t, "pod", info).Pid
	env.Restart(t, 0)
	if st, _ := podStatus(t, env, podID, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod %s after the restart, want READY", st.GetState())
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		st, _ := podStatus(t, env, podID, false)
		return st.GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY, nil
	})
	if err != nil {
		t.Errorf("pod not NOTREADY after its init died: %v", err)
	}
}
