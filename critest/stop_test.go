package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestStopSignal checks that StopContainer sends the config's stop signal
// first, and that ContainerStatus reports it.
func TestStopSignal(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("stopsignal", logDir)
	podID := runPod(t, env, pod)

	cfg := containerConfig("usr1", reg.Ref, "usr1.log", "sh", "-c",
		`trap 'echo got-usr1; exit 0' USR1; trap 'echo got-term; exit 1' TERM; echo ready; while true; do sleep 0.1; done`)
	cfg.StopSignal = runtimeapi.Signal_SIGNAL_SIGUSR1
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	readLogUntil(t, filepath.Join(logDir, "usr1.log"), func(e []framework.LogEntry) bool { return slices.ContainsFunc(e, isLine("ready")) })
	st, _ := containerStatus(t, env, cid, false)
	if st.GetStopSignal() != runtimeapi.Signal_SIGNAL_SIGUSR1 {
		t.Errorf("ContainerStatus.stop_signal = %s, want SIGUSR1", st.GetStopSignal())
	}
	if _, err := env.RuntimeService().StopContainer(t.Context(), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 30}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	st, _ = containerStatus(t, env, cid, false)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 0 {
		t.Errorf("after StopContainer: state %s exit code %d, want EXITED 0 (stopped by its trap)", st.GetState(), st.GetExitCode())
	}
	readLogUntil(t, filepath.Join(logDir, "usr1.log"), func(e []framework.LogEntry) bool { return slices.ContainsFunc(e, isLine("got-usr1")) })
}

func isLine(s string) func(framework.LogEntry) bool {
	return func(e framework.LogEntry) bool { return e.Content == s }
}

// TestStopKillsEverything checks that no process of a container survives
// StopContainer, even one that left its process group and session, in a
// pod that shares its pid namespace (where the container's main process is
// not a namespace init whose death takes the rest along).
func TestStopKillsEverything(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("stopall", logDir)
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)

	const marker = "4243"
	cfg := containerConfig("escaper", reg.Ref, "escaper.log", "sh", "-c", `setsid sleep `+marker+` & echo started; sleep 3600`)
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	readLogUntil(t, filepath.Join(logDir, "escaper.log"), func(e []framework.LogEntry) bool { return slices.ContainsFunc(e, isLine("started")) })
	// "started" can come before the child has exec'd sleep.
	err := framework.Poll(framework.Context(t), 20*time.Millisecond, func() (bool, error) {
		return len(hostProcesses(t, "sleep "+marker)) > 0, nil
	})
	if err != nil {
		t.Fatalf("the escaping child is not running: %v", err)
	}
	if _, err := env.RuntimeService().StopContainer(t.Context(), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if left := hostProcesses(t, "sleep "+marker); len(left) > 0 {
		t.Errorf("processes survived StopContainer: %v", left)
	}
}

// hostProcesses returns the pids of host processes whose command line is
// cmdline.
func hostProcesses(t *testing.T, cmdline string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ") == cmdline {
			// A zombie has an empty cmdline, so this one is alive.
			out = append(out, e.Name())
		}
	}
	return out
}

// TestOOMKilled checks that a container killed by the OOM killer exits
// with 137 and reason OOMKilled, and that the reason holds when the victim
// was a child and the main process exited on its own.
func TestOOMKilled(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("oom", logDir)
	podID := runPod(t, env, pod)

	const limit = 16 << 20
	for _, tc := range []struct {
		name   string
		script string
		code   int32
	}{
		// exec: dd is the container's main process.
		{"main", "exec dd if=/dev/zero of=/dev/null bs=64M", 137},
		{"child", "dd if=/dev/zero of=/dev/null bs=64M; exit 3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("oom-"+tc.name, reg.Ref, "", "sh", "-c", tc.script)
			cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit, MemorySwapLimitInBytes: limit}
			cid := createContainer(t, env, podID, pod, cfg)
			startContainer(t, env, cid)
			st := waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
			if st.GetExitCode() != tc.code || st.GetReason() != "OOMKilled" {
				t.Errorf("exit code %d reason %q, want %d OOMKilled", st.GetExitCode(), st.GetReason(), tc.code)
			}
		})
	}
}
