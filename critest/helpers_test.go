package critest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// Labels every object of the suite carries, to find it with selectors.
const (
	labelSuite = "critest.cubby.dev/suite"
	labelName  = "critest.cubby.dev/name"
)

// podConfig returns a pod config with a unique name and uid and its own pid
// namespace per container, as kubelet sends for a pod without
// shareProcessNamespace.
func podConfig(name, logDir string) *runtimeapi.PodSandboxConfig {
	uid := framework.RandomHex(8)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name + "-" + uid[:6],
			Uid:       uid,
			Namespace: "critest",
			Attempt:   1,
		},
		LogDirectory: logDir,
		Labels:       map[string]string{labelSuite: "critest", labelName: name},
		Annotations:  map[string]string{"critest.cubby.dev/annotation": "value " + uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

// containerConfig returns a container config running command in image.
func containerConfig(name, image, logPath string, command ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  command,
		LogPath:  logPath,
		Labels:   map[string]string{labelSuite: "critest", labelName: name},
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

// ignoreNotFound treats an object that is already gone as removed.
func ignoreNotFound(err error) error {
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}

// pullImage pulls image and removes it again when t ends.
func pullImage(t *testing.T, env *framework.Env, image string) string {
	t.Helper()
	resp, err := env.ImageService().PullImage(framework.Context(t), &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: image},
	})
	if err != nil {
		t.Fatalf("pull %s: %v", image, err)
	}
	ref := resp.GetImageRef()
	t.Cleanup(func() {
		ctx, cancel := framework.CleanupContext()
		defer cancel()
		_, err := env.ImageService().RemoveImage(ctx, &runtimeapi.RemoveImageRequest{
			Image: &runtimeapi.ImageSpec{Image: ref},
		})
		if err := ignoreNotFound(err); err != nil {
			t.Errorf("cleanup: remove image %q: %v", ref, err)
		}
	})
	return ref
}

// runPod runs a pod and stops and removes it when t ends, whatever happens.
func runPod(t *testing.T, env *framework.Env, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("run pod %s: %v", cfg.GetMetadata().GetName(), err)
	}
	id := resp.GetPodSandboxId()
	if id == "" {
		t.Fatalf("run pod %s: empty id", cfg.GetMetadata().GetName())
	}
	t.Cleanup(func() { removePod(t, env, id) })
	return id
}

func removePod(t *testing.T, env *framework.Env, id string) {
	ctx, cancel := framework.CleanupContext()
	defer cancel()
	rs := env.RuntimeService()
	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); ignoreNotFound(err) != nil {
		t.Errorf("cleanup: stop pod %q: %v", id, err)
	}
	if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); ignoreNotFound(err) != nil {
		t.Errorf("cleanup: remove pod %q: %v", id, err)
	}
}

// createContainer creates a container in pod podID and stops and removes it
// when t ends (before its pod: cleanups run last-in first-out).
func createContainer(t *testing.T, env *framework.Env, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	resp, err := env.RuntimeService().CreateContainer(framework.Context(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId:  podID,
		Config:        cfg,
		SandboxConfig: pod,
	})
	if err != nil {
		t.Fatalf("create container %s in pod %q: %v", cfg.GetMetadata().GetName(), podID, err)
	}
	id := resp.GetContainerId()
	if id == "" {
		t.Fatalf("create container %s: empty id", cfg.GetMetadata().GetName())
	}
	t.Cleanup(func() {
		ctx, cancel := framework.CleanupContext()
		defer cancel()
		rs := env.RuntimeService()
		if _, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); ignoreNotFound(err) != nil {
			t.Errorf("cleanup: stop container %q: %v", id, err)
		}
		if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); ignoreNotFound(err) != nil {
			t.Errorf("cleanup: remove container %q: %v", id, err)
		}
	})
	return id
}

func startContainer(t *testing.T, env *framework.Env, id string) {
	t.Helper()
	if _, err := env.RuntimeService().StartContainer(framework.Context(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("start container %q: %v", id, err)
	}
}

func containerStatus(t *testing.T, env *framework.Env, id string, verbose bool) (*runtimeapi.ContainerStatus, map[string]string) {
	t.Helper()
	resp, err := env.RuntimeService().ContainerStatus(framework.Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: verbose})
	if err != nil {
		t.Fatalf("status of container %q: %v", id, err)
	}
	if resp.GetStatus() == nil {
		t.Fatalf("status of container %q: nil status", id)
	}
	return resp.GetStatus(), resp.GetInfo()
}

func podStatus(t *testing.T, env *framework.Env, id string, verbose bool) (*runtimeapi.PodSandboxStatus, map[string]string) {
	t.Helper()
	resp, err := env.RuntimeService().PodSandboxStatus(framework.Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: verbose})
	if err != nil {
		t.Fatalf("status of pod %q: %v", id, err)
	}
	if resp.GetStatus() == nil {
		t.Fatalf("status of pod %q: nil status", id)
	}
	return resp.GetStatus(), resp.GetInfo()
}

// verboseInfo parses the verbose info of a status response.
func verboseInfo(t *testing.T, what string, info map[string]string) framework.VerboseInfo {
	t.Helper()
	v, err := framework.ParseVerboseInfo(info)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitContainerState polls until container id reaches state.
func waitContainerState(t *testing.T, env *framework.Env, id string, state runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	t.Helper()
	var last *runtimeapi.ContainerStatus
	err := framework.Poll(framework.Context(t), 50*time.Millisecond, func() (bool, error) {
		st, _ := containerStatus(t, env, id, false)
		last = st
		return st.GetState() == state, nil
	})
	if err != nil {
		t.Fatalf("container %q: waiting for %s, last state %s: %v", id, state, last.GetState(), err)
	}
	return last
}

// readLogUntil polls the CRI log at path until done accepts its entries.
func readLogUntil(t *testing.T, path string, done func([]framework.LogEntry) bool) []framework.LogEntry {
	t.Helper()
	var entries []framework.LogEntry
	var lastErr error
	err := framework.Poll(framework.Context(t), 50*time.Millisecond, func() (bool, error) {
		entries, lastErr = framework.ReadLog(path)
		return lastErr == nil && done(entries), nil
	})
	if err != nil {
		t.Fatalf("log %s: %v (last read: %v, %d entries: %q)", path, err, lastErr, len(entries), contents(entries))
	}
	return entries
}

func contents(entries []framework.LogEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = fmt.Sprintf("%s %s", e.Stream, e.Content)
	}
	return out
}

// podIDs and containerIDs collect the ids of list results.
func podIDs(items []*runtimeapi.PodSandbox) []string {
	ids := make([]string, 0, len(items))
	for _, p := range items {
		ids = append(ids, p.GetId())
	}
	return ids
}

func containerIDs(items []*runtimeapi.Container) []string {
	ids := make([]string, 0, len(items))
	for _, c := range items {
		ids = append(ids, c.GetId())
	}
	return ids
}

// buildStaticHelper builds the Go program pkg (an import path of this
// module) as a static binary for a test image and returns it. The suite
// builds cubbyd with the same toolchain, so a failure is the test's.
func buildStaticHelper(t *testing.T, pkg string) []byte {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	out := filepath.Join(t.TempDir(), path.Base(pkg))
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
