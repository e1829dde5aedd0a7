package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestContainerDoesNotInheritRuntimeOOMScore runs the runtime with an
// oom_score_adj of its own, -999 as the systemd unit sets (or, without
// CAP_SYS_RESOURCE to lower it, 500), and checks that a container that asks
// for no score gets 0 rather than the runtime's.
func TestContainerDoesNotInheritRuntimeOOMScore(t *testing.T) {
	if suite.Options().External() {
		t.Skip("sets the oom_score_adj of the cubbyd it starts; the runtime is external")
	}
	const path = "/proc/self/oom_score_adj"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	if strings.TrimSpace(string(old)) != "0" {
		t.Skipf("this test runs with oom_score_adj %s, not 0", strings.TrimSpace(string(old)))
	}
	score := "-999"
	if err := os.WriteFile(path, []byte(score), 0); err != nil {
		score = "500" // raising needs no privilege, nor does going back to 0
		if err := os.WriteFile(path, []byte(score), 0); err != nil {
			t.Skipf("cannot change this test's oom_score_adj: %v", err)
		}
	}
	// Restored below once cubbyd runs, and here should NewEnv fail.
	t.Cleanup(func() { _ = os.WriteFile(path, old, 0) })
	env := suite.NewEnv(t) // cubbyd inherits the score
	if err := os.WriteFile(path, old, 0); err != nil {
		t.Fatalf("restore oom_score_adj %q: %v", old, err)
	}
	t.Logf("cubbyd runs with oom_score_adj %s", score)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("oomscore", logDir)
	podID := runPod(t, env, pod)

	ccfg := containerConfig("oomscore", reg.Ref, "oom.log", "sh", "-c", "echo adj=$(cat /proc/self/oom_score_adj)")
	cid := createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, cid)
	waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	entries := readLogUntil(t, filepath.Join(logDir, "oom.log"), func(e []framework.LogEntry) bool { return len(e) >= 1 })
	if got := contents(entries); !slices.Contains(got, "stdout adj=0") {
		t.Errorf("container log %q, want adj=0 (not the runtime's %s)", strings.Join(got, "; "), score)
	}
}
