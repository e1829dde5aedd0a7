package critest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// crashPod is a running pod with one running container, and the host
// processes behind them.
type crashPod struct {
	id, ctrID string
	init, ctr framework.Process
}

// startCrashPod runs a pod in pid mode podPid whose container (in pid mode
// ctrPid) runs script.
func startCrashPod(t *testing.T, env *framework.Env, image, name string, podPid, ctrPid runtimeapi.NamespaceMode, script string) crashPod {
	t.Helper()
	pod := podConfig(name, t.TempDir())
	pod.Linux.SecurityContext.NamespaceOptions.Pid = podPid
	var p crashPod
	p.id = runPod(t, env, pod)
	_, info := podStatus(t, env, p.id, true)
	var err error
	if p.init, err = framework.ProcessOf(verboseInfo(t, "pod", info).Pid); err != nil {
		t.Fatal(err)
	}
	cfg := containerConfig("main", image, "main.log", "sh", "-c", script)
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = ctrPid
	p.ctrID = createContainer(t, env, p.id, pod, cfg)
	startContainer(t, env, p.ctrID)
	_, info = containerStatus(t, env, p.ctrID, true)
	if p.ctr, err = framework.ProcessOf(verboseInfo(t, "container", info).Pid); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPodState polls until pod id reaches state.
func waitPodState(t *testing.T, env *framework.Env, id string, state runtimeapi.PodSandboxState) {
	t.Helper()
	var last runtimeapi.PodSandboxState
	err := framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		st, _ := podStatus(t, env, id, false)
		last = st.GetState()
		return last == state, nil
	})
	if err != nil {
		t.Fatalf("pod %q: waiting for %s, last %s: %v", id, state, last, err)
	}
}

// waitGoneProc waits for p to leave the process table, zombie included.
// The suite does not reap for the runtime here: whoever the runtime made
// p's parent must.
func waitGoneProc(t *testing.T, what string, p framework.Process) {
	t.Helper()
	err := framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		ok, err := p.Exists()
		return !ok, err
	})
	if err != nil {
		t.Errorf("%s %d still exists (alive or zombie): %v", what, p.Pid, err)
	}
}

// killOrphanedKeeper ends a keeper that cubbyd's death left to the suite (or
// to the init the suite plays), as a reboot would, and reaps it.
func killOrphanedKeeper(t *testing.T, keeper framework.Process) {
	t.Helper()
	_ = syscall.Kill(keeper.Pid, syscall.SIGKILL)
	if err := framework.Poll(framework.Context(t), 10*time.Millisecond, func() (bool, error) {
		framework.ReapOrphans()
		ok, err := keeper.Exists()
		return !ok, err
	}); err != nil {
		t.Fatalf("keeper %d still exists: %v", keeper.Pid, err)
	}
}

// checkKeptBy checks that p's parent is the daemon's pod init keeper, which
// outlives cubbyd restarts, and returns the keeper.
func checkKeptBy(t *testing.T, env *framework.Env, what string, p framework.Process) framework.Process {
	t.Helper()
	ppid, err := p.Parent()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, sp := range framework.StateProcesses(env.Daemon.Config.State) {
		if sp.Keeper && sp.Pid == ppid {
			keeper, err := framework.ProcessOf(ppid)
			if err != nil {
				t.Fatalf("keeper %d: %v", ppid, err)
			}
			return keeper
		}
	}
	t.Fatalf("%s %d has parent %d (%s), want the daemon's pod init keeper", what, p.Pid, ppid, framework.Comm(ppid))
	return framework.Process{}
}

// checkNoLeftovers removes every pod and checks that nothing of them is
// left on the host.
func checkNoLeftovers(t *testing.T, env *framework.Env) {
	t.Helper()
	removeAllPods(t, env)
	var left []string
	err := framework.Poll(framework.Context(t), 100*time.Millisecond, func() (bool, error) {
		var err error
		left, err = env.Leftovers()
		return len(left) == 0, err
	})
	if err != nil {
		for _, l := range left {
			t.Errorf("leak: %s", l)
		}
		t.Error(err)
	}
}

// TestPodInitKilled kills a pod's init with SIGKILL, with cubbyd running and
// across a cubbyd restart, in every pid namespace mode: the pod goes
// NOTREADY and its container EXITED with a reason, on its own (no
// StopPodSandbox); nothing of the pod keeps running, no zombie stays, and
// removing the pod leaves nothing.
func TestPodInitKilled(t *testing.T) {
	if suite.Options().External() {
		t.Skip("kills the runtime's pod init; -endpoint given")
	}
	const (
		pod       = runtimeapi.NamespaceMode_POD
		container = runtimeapi.NamespaceMode_CONTAINER
		node      = runtimeapi.NamespaceMode_NODE
	)
	reg := suite.Image(t)
	for _, tc := range []struct {
		name           string
		podPid, ctrPid runtimeapi.NamespaceMode
		restart        bool
	}{
		{"own pid namespace", pod, container, false},
		{"shared pid namespace", pod, pod, false},
		{"node pid namespace", node, node, false},
		{"own pid namespace, after a restart", pod, container, true},
		{"node pid namespace, after a restart", node, node, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := suite.NewEnv(t)
			pullImage(t, env, reg.Ref)
			p := startCrashPod(t, env, reg.Ref, "initkill", tc.podPid, tc.ctrPid, "exec sleep 3600")
			keeper := checkKeptBy(t, env, "pod init", p.init)
			if tc.restart {
				env.Restart(t, 0)
				// Not orphaned by the restart: the parent that reaps
				// it is the one it had.
				if after := checkKeptBy(t, env, "pod init after the restart", p.init); after != keeper {
					t.Errorf("pod init kept by %d before the restart and by %d after", keeper.Pid, after.Pid)
				}
			}
			if err := syscall.Kill(p.init.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitPodState(t, env, p.id, runtimeapi.PodSandboxState_SANDBOX_NOTREADY)
			st := waitContainerState(t, env, p.ctrID, runtimeapi.ContainerState_CONTAINER_EXITED)
			if st.GetReason() == "" || st.GetFinishedAt() == 0 || st.GetExitCode() == 0 {
				t.Errorf("container after its pod init died: reason %q exit %d finished %d; want a reason, a non-zero exit and a finish time",
					st.GetReason(), st.GetExitCode(), st.GetFinishedAt())
			}
			waitGoneProc(t, "container process", p.ctr)
			waitGoneProc(t, "pod init", p.init)
			checkNoLeftovers(t, env)
		})
	}
}

// TestExitWhileDaemonDown: a container that exits while cubbyd is down
// reports its true exit code and finish time after the restart, and a pod
// whose init died meanwhile is NOTREADY, its init reaped although no cubbyd
// ran when it died.
func TestExitWhileDaemonDown(t *testing.T) {
	if suite.Options().External() {
		t.Skip("restarts the daemon; -endpoint given")
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	quitter := startCrashPod(t, env, reg.Ref, "quitter", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER,
		"sleep 3; exit 7")
	doomed := startCrashPod(t, env, reg.Ref, "doomed", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600")

	checkKeptBy(t, env, "pod init", doomed.init)
	if err := env.Daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	waitGoneProc(t, "container process", quitter.ctr)
	if err := syscall.Kill(doomed.init.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Reaped with no cubbyd running, by its keeper.
	waitGoneProc(t, "pod init that died while cubbyd was down", doomed.init)
	// The pod init takes the finish time just after it reaps, so a moment
	// after the process is seen gone: the bound that matters is the
	// restart, clearly later, whose time a runtime that lost the exit
	// would report instead.
	time.Sleep(time.Second)
	restarted := time.Now()
	env.StartAgain(t)

	st, _ := containerStatus(t, env, quitter.ctrID, false)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 7 || st.GetReason() != "Error" {
		t.Errorf("container that exited while cubbyd was down: %s exit %d reason %q, want EXITED 7 Error", st.GetState(), st.GetExitCode(), st.GetReason())
	}
	if f := time.Unix(0, st.GetFinishedAt()); f.Before(down) || !f.Before(restarted) {
		t.Errorf("finished at %s, want between %s (cubbyd killed) and %s (cubbyd restarted)", f.Format(time.RFC3339Nano), down.Format(time.RFC3339Nano), restarted.Format(time.RFC3339Nano))
	}
	if pst, _ := podStatus(t, env, quitter.id, false); pst.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod of the exited container: %s, want READY", pst.GetState())
	}
	waitPodState(t, env, doomed.id, runtimeapi.PodSandboxState_SANDBOX_NOTREADY)
	if st := waitContainerState(t, env, doomed.ctrID, runtimeapi.ContainerState_CONTAINER_EXITED); st.GetReason() == "" {
		t.Errorf("container of the dead pod: no reason")
	}
	checkNoLeftovers(t, env)
}

// TestKeeperKilled: when the pod init keeper dies while cubbyd runs, its
// pod inits re-parent to cubbyd, which keeps serving and reaps them; the
// next pod starts a new keeper.
func TestKeeperKilled(t *testing.T) {
	if suite.Options().External() {
		t.Skip("kills the runtime's pod init keeper; -endpoint given")
	}
	env := suite.NewEnv(t, framework.WithMetrics("127.0.0.1:0"))
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	old := startCrashPod(t, env, reg.Ref, "kept", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600")
	keeper := checkKeptBy(t, env, "pod init", old.init)
	if err := syscall.Kill(keeper.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGoneProc(t, "killed keeper (reaped by cubbyd)", keeper)
	if ppid, err := old.init.Parent(); err != nil || ppid != env.Daemon.Pid() {
		t.Errorf("pod init of the dead keeper: parent %d (%v), want cubbyd %d", ppid, err, env.Daemon.Pid())
	}

	next := startCrashPod(t, env, reg.Ref, "next", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600")
	if k := checkKeptBy(t, env, "pod init of a pod started after", next.init); k.Pid == keeper.Pid {
		t.Errorf("new pod kept by the dead keeper's pid %d", k.Pid)
	}
	addr, err := env.Daemon.MetricsAddress()
	if err != nil || addr == "" {
		t.Fatalf("no metrics address in the cubbyd log (%v)", err)
	}
	if _, body := scrape(t, addr, "/metrics"); metricValue(t, body, "cubby_pod_keeper_restarts_total") != 1 {
		t.Errorf("cubby_pod_keeper_restarts_total = %v after one keeper died and a pod started, want 1", metricValue(t, body, "cubby_pod_keeper_restarts_total"))
	}
	if resp := execSync(t, env, old.ctrID, 10, "echo", "still here"); resp.GetExitCode() != 0 {
		t.Errorf("exec in the pod of the dead keeper: exit %d, %s", resp.GetExitCode(), resp.GetStderr())
	}
	removePod(t, env, old.id)
	waitGoneProc(t, "pod init of the dead keeper", old.init)
	waitGoneProc(t, "container process", old.ctr)
	checkNoLeftovers(t, env)
}

// TestStateDirWiped is a reboot: every pod process is gone and the runtime
// state directory is empty. cubbyd starts, reports the old pods NOTREADY and
// their containers EXITED, removes them leaving nothing (IPs included), and
// the images and their layers still run containers.
func TestStateDirWiped(t *testing.T) {
	if suite.Options().External() {
		t.Skip("wipes the daemon's state; -endpoint given")
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pods := []crashPod{
		startCrashPod(t, env, reg.Ref, "reboot-a", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600"),
		startCrashPod(t, env, reg.Ref, "reboot-b", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD, "exec sleep 3600"),
	}

	// The reboot: cubbyd, the pod inits and their containers, and the
	// keeper die, the state directory's mounts and files go.
	keeper := checkKeptBy(t, env, "pod init", pods[0].init)
	if err := env.Daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		_ = syscall.Kill(p.init.Pid, syscall.SIGKILL)
		waitGoneProc(t, "pod init", p.init)
		waitGoneProc(t, "container process", p.ctr)
	}
	killOrphanedKeeper(t, keeper)
	state := env.Config().State
	if _, err := framework.UnmountUnder(state); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	// A reboot also clears the pods' NAT rules, which CNI DEL cannot find
	// without their network namespaces.
	if _, err := framework.RemoveNATRules(env.Config().CNI.DefaultNetworkName); err != nil {
		t.Fatal(err)
	}
	env.StartAgain(t)

	for _, p := range pods {
		if st, _ := podStatus(t, env, p.id, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("pod %q after the reboot: %s, want NOTREADY", p.id, st.GetState())
		}
		if st, _ := containerStatus(t, env, p.ctrID, false); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetReason() == "" {
			t.Errorf("container %q after the reboot: %s reason %q, want EXITED with a reason", p.ctrID, st.GetState(), st.GetReason())
		}
	}
	checkNoLeftovers(t, env)

	// The image survived whole: a new pod runs a container from it.
	img, err := env.ImageService().ImageStatus(framework.Context(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref}})
	if err != nil || img.GetImage() == nil {
		t.Fatalf("image after the reboot: %v %v", img.GetImage(), err)
	}
	p := startCrashPod(t, env, reg.Ref, "after-reboot", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600")
	resp, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: p.ctrID, Cmd: []string{"cat", "/etc/hostname"}, Timeout: 10})
	if err != nil || resp.GetExitCode() != 0 {
		t.Errorf("exec in a container of the image after the reboot: %v (exit %d, %s)", err, resp.GetExitCode(), resp.GetStderr())
	}
	checkNoLeftovers(t, env)
}
