package critest

import (
	"fmt"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodRestartsContainers runs many short containers one after the other
// in one long-lived pod, each created, started, exited and removed, as a
// pod whose container keeps restarting does. The pod's own process (its
// init, or pause) keeps no memory or descriptor per removed container.
func TestPodRestartsContainers(t *testing.T) {
	// The warm-up lets the Go heap of the pod's process reach its steady
	// size (GC headroom), so growth after it is memory kept.
	const warmup, cycles = 50, 150
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("restarts", logDir)
	podID := runPod(t, env, pod)
	_, info := podStatus(t, env, podID, true)
	pid := verboseInfo(t, "pod status", info).Pid
	rs := env.RuntimeService()
	ctx := framework.Context(t)

	cycle := func(n int) {
		t.Helper()
		cfg := containerConfig("restarts", reg.Ref, fmt.Sprintf("restarts-%d.log", n), "sh", "-c", "echo run "+itoa(n))
		cfg.Metadata.Attempt = uint32(n)
		cr, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err != nil {
			t.Fatalf("cycle %d: create: %v", n, err)
		}
		id := cr.GetContainerId()
		if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("cycle %d: start: %v", n, err)
		}
		waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
		if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("cycle %d: remove: %v", n, err)
		}
	}
	for n := range warmup {
		cycle(n)
	}
	before, err := readDaemonFigures(pid)
	if err != nil {
		t.Fatalf("pod process %d: %v", pid, err)
	}
	for n := warmup; n < warmup+cycles; n++ {
		cycle(n)
	}
	after, err := readDaemonFigures(pid)
	if err != nil {
		t.Fatalf("pod process %d: %v", pid, err)
	}
	t.Logf("pod process %d over %d containers: fds %d -> %d, threads %d -> %d, rss %d -> %d KiB",
		pid, cycles, before.FDs, after.FDs, before.Threads, after.Threads, before.RSSKiB, after.RSSKiB)
	if after.Threads > before.Threads+2 {
		t.Errorf("the pod process has %d threads after %d containers came and went, %d before", after.Threads, cycles, before.Threads)
	}
	if after.FDs > before.FDs {
		t.Errorf("the pod process holds %d fds after %d containers came and went, %d before", after.FDs, cycles, before.FDs)
	}
	// RSS moves by a megabyte either way with the Go heap's GC cycles; a
	// record kept per container (a spec, a seccomp filter: tens of KiB)
	// would not stay within this bound.
	if after.RSSKiB > before.RSSKiB+2048 {
		t.Errorf("the pod process grew from %d to %d KiB over %d containers", before.RSSKiB, after.RSSKiB, cycles)
	}
}
