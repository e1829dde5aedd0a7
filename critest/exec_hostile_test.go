package critest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// The tests here attack the runtime's own processes from a hostile
// container: with CAP_SYS_PTRACE (kubectl debug --profile=general and
// profilers add it) a container opens /proc/<pid>/root, cwd, exe and fd/*
// of every process that appears in its pid namespace, including the
// runtime's exec stage while it sets up an exec. Nothing reached that way
// may be the host: critest/internal/procprobe does the reaching.

// probeImage is the procprobe image, built and pushed once per registry.
var probeImage struct {
	sync.Mutex
	refs map[string]string // by registry host
}

// pushProbeImage pushes an image holding only procprobe (static) and a
// script whose interpreter is /proc/self/exe, and returns its reference.
func pushProbeImage(t *testing.T, reg *testimage.Registry) string {
	t.Helper()
	probeImage.Lock()
	defer probeImage.Unlock()
	if ref, ok := probeImage.refs[reg.Host]; ok {
		return ref
	}
	data := buildStaticHelper(t, "cubby/critest/internal/procprobe")
	img, err := testimage.WithFiles(empty.Image,
		testimage.File{Path: "/procprobe", Mode: 0o755, Data: data},
		// CVE-2019-5736: executing this runs whatever the exec'ing
		// process's /proc/self/exe is: the runtime, if it still is.
		testimage.File{Path: "/reexec", Mode: 0o755, Data: []byte("#!/proc/self/exe\n")},
		testimage.File{Path: "/tmp/.keep", Mode: 0o644},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(framework.Context(t), img, "procprobe:1"); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/procprobe:1"
	if probeImage.refs == nil {
		probeImage.refs = map[string]string{}
	}
	probeImage.refs[reg.Host] = ref
	return ref
}

// hostMarker puts a file on the host's root that no container may read,
// and returns its name; at cleanup it removes it, and fails t if a
// container created MARKER.created next to it.
func hostMarker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "critest-host-marker-" + hex.EncodeToString(b)
	path := filepath.Join("/", name)
	if err := os.WriteFile(path, []byte("host\n"), 0o644); err != nil {
		t.Skipf("cannot put a marker on the host root: %v", err)
	}
	t.Cleanup(func() {
		os.Remove(path)
		if err := os.Remove(path + ".created"); err == nil {
			t.Errorf("a container created %s on the host", path+".created")
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove %s.created: %v", path, err)
		}
	})
	return name
}

// startProbe runs `procprobe watch marker ignore...` as a container with
// CAP_SYS_PTRACE in a new pod, both in pid mode pid, and waits until it
// watches. It returns the
// container's id and its log path.
func startProbe(t *testing.T, env *framework.Env, marker string, pid runtimeapi.NamespaceMode, ignore ...string) (id, logPath string) {
	t.Helper()
	reg := suite.Image(t)
	ref := pushProbeImage(t, reg)
	pullImage(t, env, ref)
	logDir := t.TempDir()
	pod := podConfig("probe", logDir)
	pod.Linux.SecurityContext.NamespaceOptions.Pid = pid
	podID := runPod(t, env, pod)
	cfg := containerConfig("probe", ref, "probe.log", append([]string{"/procprobe", "watch", marker}, ignore...)...)
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = pid
	cfg.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_PTRACE"}}
	id = createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, id)
	logPath = filepath.Join(logDir, "probe.log")
	readLogUntil(t, logPath, func(e []framework.LogEntry) bool {
		return len(e) > 0 && e[0].Content == "watching"
	})
	return id, logPath
}

// stopProbe tells the probe to stop and returns its report lines.
func stopProbe(t *testing.T, env *framework.Env, id, logPath string) []string {
	t.Helper()
	execSync(t, env, id, 10, "/procprobe", "stop")
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	return logLines(readLogUntil(t, logPath, func(e []framework.LogEntry) bool {
		return len(e) > 0 && e[len(e)-1].Content == endMarker
	}))
}

// logLines returns the content of every entry.
func logLines(entries []framework.LogEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Content)
	}
	return out
}

// checkProbeReport fails t for every finding of the probe, and for an
// executable it reached that is the runtime's binary on the host.
func checkProbeReport(t *testing.T, lines []string) {
	t.Helper()
	hostBins := hostRuntimeBinaries(t)
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "HOST-"), strings.HasPrefix(l, "EXE-WRITABLE"):
			t.Errorf("the container reached the host: %s", l)
		case strings.HasPrefix(l, "exe="):
			if bin, ok := hostBins[strings.TrimPrefix(l, "exe=")]; ok {
				t.Errorf("the container opened the runtime's binary %s on the host through /proc/<pid>/exe", bin)
			}
		}
	}
}

// hostRuntimeBinaries maps "dev:ino" to the path of each binary of the
// daemon under test (the private one: with -endpoint they are unknown).
func hostRuntimeBinaries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	if suite.Options().Endpoint != "" {
		t.Log("testing an external endpoint: its binaries on the host are unknown, only writes are checked")
		return out
	}
	dir := filepath.Dir(suite.Cubbyd(t))
	for _, name := range []string{"cubbyd", "cubby-pod"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, name), &st); err == nil {
			out[fmt.Sprintf("%d:%d", st.Dev, st.Ino)] = filepath.Join(dir, name)
		}
	}
	return out
}

// TestHostileExecStageRace races 200 ExecSync calls with a container that
// has CAP_SYS_PTRACE and opens root, cwd, exe and fd/* of every new pid
// in its pid namespace: the runtime's exec stage must be the container's
// (or hold nothing) from the moment it appears there. Through what it
// opened, the container must never read a marker on the host's root,
// create a file on the host, or open the runtime binary on the host, nor
// any executable for writing, even after the exec has ended.
func TestHostileExecStageRace(t *testing.T) {
	env := suite.NewEnv(t)
	marker := hostMarker(t)
	id, logPath := startProbe(t, env, marker, runtimeapi.NamespaceMode_CONTAINER)
	raceExecs(t, env, id, logPath, 200)
}

// TestHostileExecStageRaceSharedPid is TestHostileExecStageRace in a pod
// that shares its pid namespace, where the exec stage is visible to every
// container of the pod. The pod's PID 1 (a pause process, or the
// runtime's pod init) is left alone here: it is not an exec.
func TestHostileExecStageRaceSharedPid(t *testing.T) {
	env := suite.NewEnv(t)
	marker := hostMarker(t)
	id, logPath := startProbe(t, env, marker, runtimeapi.NamespaceMode_POD, "1")
	raceExecs(t, env, id, logPath, 100)
}

// raceExecs execs n times into the probe container, stops it and checks
// its report.
func raceExecs(t *testing.T, env *framework.Env, id, logPath string, n int) {
	t.Helper()
	for i := range n {
		if resp := execSync(t, env, id, 10, "/procprobe", "true"); resp.GetExitCode() != 0 {
			t.Fatalf("exec %d: exit code %d: %s", i, resp.GetExitCode(), resp.GetStderr())
		}
	}
	lines := stopProbe(t, env, id, logPath)
	if p, _ := lineWithPrefix(lines, "probed="); p == "" || p == "0" {
		t.Fatalf("the probe saw no process: %q", lines)
	}
	checkProbeReport(t, lines)
}

// TestHostileReexecRuntimeBinary execs a script whose interpreter is
// #!/proc/self/exe (CVE-2019-5736): the process then runs whatever binary
// the process that exec'd it ran, and the container, watching, opens it
// through /proc/<pid>/exe. That must never be the runtime's binary on the
// host, and must never open for writing, also after the runtime's
// process has exited.
func TestHostileReexecRuntimeBinary(t *testing.T) {
	env := suite.NewEnv(t)
	marker := hostMarker(t)
	id, logPath := startProbe(t, env, marker, runtimeapi.NamespaceMode_CONTAINER)
	for range 20 {
		// The runtime's binary run with a script path for arguments
		// fails; what matters is what the container could open meanwhile.
		_, _ = env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/reexec"}, Timeout: 10})
	}
	lines := stopProbe(t, env, id, logPath)
	if _, ok := lineWithPrefix(lines, "exe="); !ok {
		t.Logf("the probe reached no executable other than its own: %q", lines)
	}
	checkProbeReport(t, lines)
}

// TestHostileLeakedFdWorkingDir sets a container's working_dir to
// /proc/self/fd/N for every small N (CVE-2024-21626: a host directory fd
// leaked into the runtime's init or exec stage becomes the process's
// working directory, outside the container's root). A container that
// starts, and an exec in it (which takes its working directory), must not
// reach a marker on the host's root from there.
func TestHostileLeakedFdWorkingDir(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ref := pushProbeImage(t, reg)
	pullImage(t, env, ref)
	marker := hostMarker(t)
	logDir := t.TempDir()
	pod := podConfig("leakedfd", logDir)
	podID := runPod(t, env, pod)
	rs := env.RuntimeService()
	ctx := framework.Context(t)
	started := 0
	for n := 3; n <= 12; n++ {
		name := fmt.Sprintf("fd%d", n)
		cfg := containerConfig(name, ref, name+".log", "/procprobe", "cwdwait", marker)
		cfg.WorkingDir = fmt.Sprintf("/proc/self/fd/%d", n)
		created, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err != nil {
			continue
		}
		id := created.GetContainerId()
		if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
			continue
		}
		started++
		lines := logLines(readLogUntil(t, filepath.Join(logDir, name+".log"), func(e []framework.LogEntry) bool {
			return len(e) > 0 && e[len(e)-1].Content == endMarker
		}))
		for _, l := range lines {
			if strings.HasPrefix(l, "HOST-") {
				t.Errorf("working_dir %s: the container reached the host: %s", cfg.WorkingDir, l)
			}
		}
		resp, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/procprobe", "cwd", marker}, Timeout: 10})
		if err == nil && strings.Contains(string(resp.GetStdout()), "HOST-") {
			t.Errorf("working_dir %s: an exec reached the host: %s", cfg.WorkingDir, resp.GetStdout())
		}
	}
	t.Logf("%d of 10 containers with a /proc/self/fd/N working directory started", started)
}
