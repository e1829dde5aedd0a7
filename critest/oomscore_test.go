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

// TestContainerDoesNotInheritRuntimeOOMScore runs the runtime the way the
// systemd unit does, with oom_score_adj -999, and checks that a container
// that asks for no score gets 0 rather than the runtime's protection.
func TestContainerDoesNotInheritRuntimeOOMScore(t *testing.T) {
	if suite.Options().External() {
		t.Skip("sets the oom_score_adj of the cubbyd it starts; the runtime is external")
	}
	const path = "/proc/self/oom_score_adj"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte("-999"), 0); err != nil {
		t.Skipf("cannot lower this test's oom_score_adj (needs CAP_SYS_RESOURCE): %v", err)
	}
	env := suite.NewEnv(t) // cubbyd inherits -999, as under the unit
	if err := os.WriteFile(path, old, 0); err != nil {
		t.Fatalf("restore oom_score_adj %q: %v", old, err)
	}
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
		t.Errorf("container log %q, want adj=0 (not the runtime's -999)", strings.Join(got, "; "))
	}
}
