package critest

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestRestartSurvival kills the daemon with SIGKILL under a running
// container and starts it again: the container keeps running in the same
// process, the pod keeps its IP, and its log loses no line.
func TestRestartSurvival(t *testing.T) {
	if suite.Options().External() {
		t.Skip("restarts the daemon: needs a private cubbyd (not with -endpoint)")
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	cgroupParent := "/critest-" + framework.RandomHex(4)
	t.Cleanup(func() { framework.RemoveCgroup(t, cgroupParent) })
	logDir := t.TempDir()
	pod := podConfig("restart", logDir)
	pod.Linux.CgroupParent = cgroupParent
	podID := runPod(t, env, pod)
	pst, _ := podStatus(t, env, podID, false)

	cfg := containerConfig("counter", reg.Ref, "counter.log",
		"sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done")
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	_, info := containerStatus(t, env, cid, true)
	proc, err := framework.ProcessOf(verboseInfo(t, "container "+cid, info).Pid)
	if err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(logDir, "counter.log")
	before := readLogUntil(t, logPath, func(e []framework.LogEntry) bool { return len(e) >= 3 })

	env.Restart(t, time.Second)

	st, _ := containerStatus(t, env, cid, false)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %q after restart: state %s, want RUNNING", cid, st.GetState())
	}
	if alive, err := proc.Alive(); err != nil || !alive {
		t.Errorf("container process %d after restart: alive=%v (%v)", proc.Pid, alive, err)
	}
	pst2, _ := podStatus(t, env, podID, false)
	if pst2.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod %q after restart: state %s, want READY", podID, pst2.GetState())
	}
	if got, want := pst2.GetNetwork().GetIp(), pst.GetNetwork().GetIp(); got != want {
		t.Errorf("pod %q after restart: ip %q, want %q", podID, got, want)
	}

	// The counter wrote ~10 lines while the daemon was gone; a second more
	// and every value since 0 must be there, in order.
	mid, err := framework.ReadLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	after, err := framework.ReadLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) <= len(mid) || len(mid) <= len(before) {
		t.Errorf("log did not grow across the restart: %d lines before, %d after restart, %d a second later",
			len(before), len(mid), len(after))
	}
	for i, e := range after {
		if n, err := strconv.Atoi(e.Content); err != nil || n != i || e.Stream != "stdout" {
			t.Fatalf("log line %d = %s %q, want stdout %d (lost or garbled output across the restart)", i, e.Stream, e.Content, i)
		}
	}
	t.Logf("counter at %d before the kill, %d after restart, %d a second later", len(before), len(mid), len(after))
}
