package critest

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// nodeInitEnv, set in its environment, tells the test binary that it was
// re-executed as PID 1 of new pid and mount namespaces.
const nodeInitEnv = "CUBBY_CRITEST_NODE_INIT"

// TestNoZombieUnderNonReapingInit plays a node whose init never reaps
// orphans (this VM's PID 1 is one): the test binary re-executes itself as
// PID 1 of a new pid namespace, and there, reaping nothing, runs a cubbyd
// through a crash. cubbyd is SIGKILLed with pods running, their pod inits
// die while it is down, it restarts, the pods are removed and cubbyd stops:
// at no point is there a zombie in the namespace, because every pod init
// stays the child of the pod init keeper, which reaps it; the container
// that a node-pid pod init left behind is ended by the keeper, not left
// running until cubbyd is back. The keeper, its parent now PID 1, stays
// idle for the next cubbyd rather than exit into a zombie.
func TestNoZombieUnderNonReapingInit(t *testing.T) {
	if os.Getenv(nodeInitEnv) != "" {
		crashUnderNonReapingInit(t)
		return
	}
	if suite.Options().External() {
		t.Skip("starts private daemons in a pid namespace; -endpoint given")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	suite.Image(t) // skips when there is no test image
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoZombieUnderNonReapingInit$", "-test.v", "-test.count=1",
		"-cubbyd", suite.Cubbyd(t), "-busybox", suite.Options().Busybox)
	cmd.Env = append(os.Environ(), nodeInitEnv+"=1")
	// PID 1 of its pid namespace: when it ends, the kernel kills whatever
	// is left in there, the idle keeper included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNoZombieUnderNonReapingInit") {
		t.Fatalf("in a pid namespace whose init does not reap: %v\n%s", err, out)
	}
}

// crashUnderNonReapingInit is the part run as PID 1. Nothing here reaps
// until the checks are done: a pod init orphaned to this process would
// stay a zombie.
func crashUnderNonReapingInit(t *testing.T) {
	if os.Getpid() != 1 {
		t.Fatalf("running as pid %d, want PID 1 of a new pid namespace", os.Getpid())
	}
	noZombies := func(when string) {
		t.Helper()
		if z := framework.AllZombies(); len(z) > 0 {
			t.Errorf("%s: zombies: %s", when, strings.Join(z, "; "))
		}
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pods := []crashPod{
		startCrashPod(t, env, reg.Ref, "own-pid", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600"),
		// Its container outlives the pod init, re-parented to the keeper,
		// which ends it.
		startCrashPod(t, env, reg.Ref, "node-pid", runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE, "exec sleep 3600"),
	}
	keeper := checkKeptBy(t, env, "pod init", pods[0].init)

	if err := env.Daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	if ppid, _ := keeper.Parent(); ppid != 1 {
		t.Errorf("keeper's parent after cubbyd died: %d, want this init", ppid)
	}
	for _, p := range pods {
		if err := syscall.Kill(p.init.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGoneProc(t, "pod init that died while cubbyd was down", p.init)
	}
	waitGoneProc(t, "container of the own-pid pod", pods[0].ctr)
	// The node-pid container outlived its pod init, re-parented to the
	// keeper: with no cubbyd to kill it through its cgroup, the keeper
	// ends it rather than let it run on unmonitored.
	waitGoneProc(t, "container of the node-pid pod, cubbyd down", pods[1].ctr)
	noZombies("pod inits dead, cubbyd down")
	t.Logf("cubbyd killed, pod inits %d and %d killed: reaped by keeper %d", pods[0].init.Pid, pods[1].init.Pid, keeper.Pid)

	env.StartAgain(t)
	for _, p := range pods {
		waitPodState(t, env, p.id, runtimeapi.PodSandboxState_SANDBOX_NOTREADY)
		waitContainerState(t, env, p.ctrID, runtimeapi.ContainerState_CONTAINER_EXITED)
	}
	for _, p := range pods {
		removePod(t, env, p.id)
	}
	noZombies("pods removed")

	if err := env.Daemon.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // an exit into a zombie would show by now
	if ok, _ := keeper.Alive(); !ok {
		t.Errorf("keeper %d, its parent PID 1, exited once let go; want it to stay for the next cubbyd", keeper.Pid)
	}
	noZombies("cubbyd stopped")
	t.Logf("pods removed, cubbyd stopped: keeper %d stays idle, no zombie", keeper.Pid)
	// Done checking: end the keeper like a reboot would.
	killOrphanedKeeper(t, keeper)
	env.StartAgain(t) // for the cleanups, which find nothing left
}
