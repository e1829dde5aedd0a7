package critest

import (
	"testing"

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
