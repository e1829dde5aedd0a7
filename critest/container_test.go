package critest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestContainerProcess checks what a container's process sees of its
// config: user, working directory, environment, and both output streams.
func TestContainerProcess(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("process", logDir)
	podID := runPod(t, env, pod)

	ccfg := containerConfig("proc", reg.Ref, "proc.log", "sh", "-c",
		`echo "uid=$(id -u) gid=$(id -g)"; pwd; echo "FOO=$FOO"; echo oops >&2`)
	ccfg.WorkingDir = "/srv/work"
	ccfg.Envs = []*runtimeapi.KeyValue{{Key: "FOO", Value: []byte("bar baz")}}
	ccfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	cid := createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, cid)
	st := waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 0 || st.GetReason() != "Completed" {
		t.Errorf("exit code %d reason %q, want 0 Completed", st.GetExitCode(), st.GetReason())
	}
	entries := readLogUntil(t, filepath.Join(logDir, "proc.log"), func(e []framework.LogEntry) bool { return len(e) >= 4 })
	want := []string{"stdout uid=1000 gid=1000", "stdout /srv/work", "stdout FOO=bar baz", "stderr oops"}
	got := contents(entries)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("log lacks %q; has %q", w, got)
		}
	}
}

// TestSharedPidNamespace checks that containers of a pod that shares its pid
// namespace see each other's processes, and that PID 1 is not theirs.
func TestSharedPidNamespace(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("sharedpid", logDir)
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)

	sleeper := containerConfig("sleeper", reg.Ref, "sleeper.log", "sleep", "4242")
	sleeper.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	startContainer(t, env, createContainer(t, env, podID, pod, sleeper))

	looker := containerConfig("looker", reg.Ref, "looker.log", "sh", "-c",
		"echo pid=$$; ps -o args; (echo x >> /proc/1/exe) 2>/dev/null && echo WROTE-PID1-EXE")
	looker.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	lid := createContainer(t, env, podID, pod, looker)
	startContainer(t, env, lid)
	waitContainerState(t, env, lid, runtimeapi.ContainerState_CONTAINER_EXITED)
	entries := readLogUntil(t, filepath.Join(logDir, "looker.log"), func(e []framework.LogEntry) bool {
		return slices.ContainsFunc(e, func(l framework.LogEntry) bool { return strings.Contains(l.Content, "sleep 4242") })
	})
	for _, e := range entries {
		if e.Content == "pid=1" {
			t.Errorf("container is PID 1 although the pod shares its pid namespace")
		}
		// The pod's PID 1 is the runtime's binary: a container must not
		// be able to write it through /proc/1/exe (CVE-2019-5736).
		if e.Content == "WROTE-PID1-EXE" {
			t.Errorf("container could write the pod init's binary through /proc/1/exe")
		}
	}
}

// TestContainerStats checks that a running container reports CPU and
// memory use, alone and in the list.
func TestContainerStats(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	pullImage(t, env, reg.Ref)
	pod := podConfig("stats", t.TempDir())
	podID := runPod(t, env, pod)
	// Allocate some memory and keep it: the working set must show it.
	cid := createContainer(t, env, podID, pod, containerConfig("stats", reg.Ref, "stats.log",
		"sh", "-c", "mkdir -p /dev/shm/x && head -c 8388608 /dev/zero > /dev/shm/x/fill; sleep 3600"))
	startContainer(t, env, cid)

	var st *runtimeapi.ContainerStats
	err := framework.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		resp, err := rs.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: cid})
		if err != nil {
			return false, err
		}
		st = resp.GetStats()
		return st.GetMemory().GetWorkingSetBytes().GetValue() >= 8<<20, nil
	})
	if err != nil {
		t.Fatalf("ContainerStats of %q: %v (last %v)", cid, err, st)
	}
	if st.GetAttributes().GetId() != cid || st.GetAttributes().GetMetadata().GetName() != "stats" {
		t.Errorf("attributes %v, want id %q name stats", st.GetAttributes(), cid)
	}
	if st.GetCpu().GetTimestamp() == 0 || st.GetCpu().GetUsageCoreNanoSeconds() == nil {
		t.Errorf("cpu usage missing: %v", st.GetCpu())
	}
	list, err := rs.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
		Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: podID},
	})
	if err != nil {
		t.Fatalf("ListContainerStats: %v", err)
	}
	if len(list.GetStats()) != 1 || list.GetStats()[0].GetAttributes().GetId() != cid {
		t.Errorf("ListContainerStats for pod %q = %v, want just %q", podID, list.GetStats(), cid)
	}
}

// TestStartFailure checks that a container whose command does not exist
// fails to start with an error and never reports RUNNING.
func TestStartFailure(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig("startfail", t.TempDir())
	podID := runPod(t, env, pod)
	cid := createContainer(t, env, podID, pod, containerConfig("missing", reg.Ref, "missing.log", "/no/such/binary"))
	_, err := env.RuntimeService().StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cid})
	if err == nil {
		t.Fatalf("StartContainer of a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("start error %q does not name the binary", err)
	}
	st, _ := containerStatus(t, env, cid, false)
	if st.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %q is RUNNING after a failed start", cid)
	}
}

// TestContainerWithoutLog runs a container whose pod has no log directory
// and which has no log path (crictl without --log-path): it runs all the
// same, its output goes nowhere.
func TestContainerWithoutLog(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig("nolog", "")
	podID := runPod(t, env, pod)
	cid := createContainer(t, env, podID, pod, containerConfig("nolog", reg.Ref, "", "sh", "-c", "echo hello; exit 7"))
	startContainer(t, env, cid)
	st := waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 7 {
		t.Errorf("exit code %d, want 7", st.GetExitCode())
	}
	if st.GetLogPath() != "" {
		t.Errorf("log_path %q, want none", st.GetLogPath())
	}
}
