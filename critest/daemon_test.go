package critest

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestSideBySide runs two private daemons at once, each with its own
// socket and directories, and a pod on each: neither sees the other's.
func TestSideBySide(t *testing.T) {
	if suite.Options().External() {
		t.Skip("starts private daemons; -endpoint given")
	}
	reg := suite.Image(t)
	ctx := framework.Context(t)
	a, b := suite.NewEnv(t), suite.NewEnv(t)
	var ids []string
	for _, env := range []*framework.Env{a, b} {
		pullImage(t, env, reg.Ref)
		pod := podConfig("sidebyside", t.TempDir())
		id := runPod(t, env, pod)
		ids = append(ids, id)
	}
	for i, env := range []*framework.Env{a, b} {
		resp, err := env.RuntimeService().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := podIDs(resp.GetItems())
		if len(got) != 1 || got[0] != ids[i] {
			t.Errorf("daemon %d lists pods %q, want only %q", i, got, ids[i])
		}
	}
}

// TestRunPodSandboxRetry checks kubelet's retry: a RunPodSandbox for a name
// that already has a ready pod hands that pod back instead of failing.
func TestRunPodSandboxRetry(t *testing.T) {
	if suite.Options().External() {
		t.Skip("cubby's retry semantics; other runtimes answer name-reserved")
	}
	env := suite.NewEnv(t)
	pod := podConfig("retry", t.TempDir())
	first := runPod(t, env, pod)
	resp, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		t.Fatalf("retried RunPodSandbox: %v", err)
	}
	if resp.GetPodSandboxId() != first {
		t.Errorf("retried RunPodSandbox gave %q, want the first pod %q", resp.GetPodSandboxId(), first)
	}
}

// TestCreateContainerRetryWaitsForTheFirst checks kubelet's retry of a
// CreateContainer that is still being built (cubbyd is made slow at the
// bundle step): the retry answers only once the first call has finished,
// with the same container, which exists and is CREATED; it never hands
// back an id of a container that is half made.
func TestCreateContainerRetryWaitsForTheFirst(t *testing.T) {
	if suite.Options().External() {
		t.Skip("slows a private cubbyd's CreateContainer; -endpoint given")
	}
	env := suite.NewEnv(t, framework.WithEnv("CUBBY_TEST_DELAY=create-container/bundle=2s"))
	image := pullImage(t, env, suite.Image(t).Ref)
	pod := podConfig("ctr-retry", t.TempDir())
	podID := runPod(t, env, pod)
	cfg := containerConfig("slow", image, "slow.log", "sleep", "60")
	req := &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod}
	rs := env.RuntimeService()

	type answer struct {
		id  string
		err error
		at  time.Time
	}
	first := make(chan answer, 1)
	go func() {
		resp, err := rs.CreateContainer(framework.Context(t), req)
		first <- answer{resp.GetContainerId(), err, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond) // the first call is in its slow step
	resp, err := rs.CreateContainer(framework.Context(t), req)
	retried := answer{resp.GetContainerId(), err, time.Now()}
	orig := <-first
	if orig.err != nil {
		t.Fatalf("CreateContainer: %v", orig.err)
	}
	// RemovePodSandbox in runPod's cleanup removes the container.
	if retried.err != nil {
		t.Fatalf("retried CreateContainer: %v", retried.err)
	}
	if retried.id != orig.id {
		t.Errorf("retry gave container %q, want the first call's %q", retried.id, orig.id)
	}
	if retried.at.Before(orig.at.Add(-50 * time.Millisecond)) {
		t.Errorf("retry answered %v before the first CreateContainer finished: it handed back a container still being built", orig.at.Sub(retried.at))
	}
	st, err := rs.ContainerStatus(framework.Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: retried.id})
	if err != nil {
		t.Fatalf("status of the retried container: %v", err)
	}
	if st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("retried container state %v, want CREATED", st.GetStatus().GetState())
	}
}
