package critest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestReopenContainerLog rotates a running container's log the way kubelet
// does (rename, then ReopenContainerLog) and sees new lines in a new file.
func TestReopenContainerLog(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("reopen", logDir)
	podID := runPod(t, env, pod)
	cid := createContainer(t, env, podID, pod, containerConfig("ticker", reg.Ref, "ticker.log",
		"sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"))
	startContainer(t, env, cid)

	logPath := filepath.Join(logDir, "ticker.log")
	readLogUntil(t, logPath, func(e []framework.LogEntry) bool { return len(e) >= 3 })
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := env.RuntimeService().ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: cid}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	fresh := readLogUntil(t, logPath, func(e []framework.LogEntry) bool { return len(e) >= 3 })
	old, err := framework.ReadLog(rotated)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := strconv.Atoi(old[len(old)-1].Content)
	first, _ := strconv.Atoi(fresh[0].Content)
	if first <= last {
		t.Errorf("new log starts at %d, the rotated one ended at %d: want later lines in the new file", first, last)
	}
}

// TestUpdateContainerResources raises a running container's memory limit
// and sees it in its cgroup and in its status.
func TestUpdateContainerResources(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	pullImage(t, env, reg.Ref)
	pod := podConfig("update", t.TempDir())
	podID := runPod(t, env, pod)
	ccfg := containerConfig("sleeper", reg.Ref, "sleeper.log", "sleep", "3600")
	ccfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	cid := createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, cid)

	_, err := rs.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: cid,
		Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20},
	})
	if err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	st, info := containerStatus(t, env, cid, true)
	if got := st.GetResources().GetLinux().GetMemoryLimitInBytes(); got != 128<<20 {
		t.Errorf("status memory limit %d, want %d", got, 128<<20)
	}
	v := verboseInfo(t, "container "+cid, info)
	_, limitFile, err := framework.MemoryCgroup(v.Pid)
	if err != nil {
		t.Skipf("no memory cgroup to check: %v", err)
	}
	b, err := os.ReadFile(limitFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(128<<20) {
		t.Errorf("%s = %s, want %d", limitFile, got, 128<<20)
	}
}
