package critest

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// faultEnv is cubbyd's test-only switch: cubbyd kills itself with SIGKILL
// when it reaches the fault point it names.
const faultEnv = "CUBBY_TEST_FAULT"

// lifecycle steps, in the order kubelet takes them for one pod.
type step int

const (
	stepPull step = iota
	stepRunPod
	stepCreate
	stepStart
	stepStopPod
	stepRemovePod
)

func (s step) String() string {
	return [...]string{"PullImage", "RunPodSandbox", "CreateContainer", "StartContainer", "StopPodSandbox", "RemovePodSandbox"}[s]
}

// crashWorld is one pod's lifecycle driven step by step through a fault.
type crashWorld struct {
	t      *testing.T
	env    *framework.Env
	image  string
	pod    *runtimeapi.PodSandboxConfig
	podID  string
	ctr    *runtimeapi.ContainerConfig
	ctrID  string
	inits  []framework.Process // pod inits seen, which must all be gone at the end
	ctrPid []framework.Process // container processes seen
}

func (w *crashWorld) rs() runtimeapi.RuntimeServiceClient { return w.env.RuntimeService() }

// do runs step s and returns its error.
func (w *crashWorld) do(ctx context.Context, s step) error {
	switch s {
	case stepPull:
		_, err := w.env.ImageService().PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: w.image}})
		return err
	case stepRunPod:
		resp, err := w.rs().RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: w.pod})
		if err == nil {
			w.podID = resp.GetPodSandboxId()
			w.notePodInit(ctx)
		}
		return err
	case stepCreate:
		resp, err := w.rs().CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: w.podID, Config: w.ctr, SandboxConfig: w.pod})
		if err == nil {
			w.ctrID = resp.GetContainerId()
		}
		return err
	case stepStart:
		_, err := w.rs().StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: w.ctrID})
		if err == nil {
			w.noteContainer(ctx)
		}
		return err
	case stepStopPod:
		_, err := w.rs().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: w.podID})
		return err
	case stepRemovePod:
		_, err := w.rs().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: w.podID})
		return err
	}
	return nil
}

// notePodInit remembers the pod init's process, from the verbose status.
func (w *crashWorld) notePodInit(ctx context.Context) {
	resp, err := w.rs().PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: w.podID, Verbose: true})
	if err != nil {
		w.t.Fatalf("status of pod %q: %v", w.podID, err)
	}
	if info, err := framework.ParseVerboseInfo(resp.GetInfo()); err == nil && info.Pid > 0 {
		if p, err := framework.ProcessOf(info.Pid); err == nil {
			w.inits = append(w.inits, p)
		}
	}
}

func (w *crashWorld) noteContainer(ctx context.Context) {
	resp, err := w.rs().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: w.ctrID, Verbose: true})
	if err != nil {
		w.t.Fatalf("status of container %q: %v", w.ctrID, err)
	}
	if info, err := framework.ParseVerboseInfo(resp.GetInfo()); err == nil && info.Pid > 0 {
		if p, err := framework.ProcessOf(info.Pid); err == nil {
			w.ctrPid = append(w.ctrPid, p)
		}
	}
}

// pods lists the pods of this world's name.
func (w *crashWorld) pods(ctx context.Context) []*runtimeapi.PodSandbox {
	resp, err := w.rs().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		w.t.Fatalf("list pods: %v", err)
	}
	var out []*runtimeapi.PodSandbox
	for _, p := range resp.GetItems() {
		if p.GetMetadata().GetName() == w.pod.GetMetadata().GetName() {
			out = append(out, p)
		}
	}
	return out
}

func (w *crashWorld) containers(ctx context.Context) []*runtimeapi.Container {
	resp, err := w.rs().ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		w.t.Fatalf("list containers: %v", err)
	}
	return resp.GetContainers()
}

// TestCrashAtFaultPoints kills cubbyd (SIGKILL, by its test-only fault
// switch) at every named step inside the RPCs that change state, restarts
// it, and checks what kubelet would see and do: the half-made object is
// either gone or consistent, kubelet's retry or cleanup finishes the
// lifecycle, and once the pod is removed nothing of it is left on the host
// (state files, mounts, cgroups, veths, IPs, processes, zombies).
func TestCrashAtFaultPoints(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd built with fault points (not with -endpoint)")
	}
	cases := []struct {
		point string
		at    step
	}{
		{"pull-image/layers", stepPull},
		{"run-pod-sandbox/recorded", stepRunPod},
		{"run-pod-sandbox/cgroups", stepRunPod},
		{"run-pod-sandbox/files", stepRunPod},
		{"run-pod-sandbox/pod-init", stepRunPod},
		{"run-pod-sandbox/network", stepRunPod},
		{"run-pod-sandbox/done", stepRunPod},
		{"create-container/recorded", stepCreate},
		{"create-container/snapshot", stepCreate},
		{"create-container/mounted", stepCreate},
		{"create-container/bundle", stepCreate},
		{"create-container/done", stepCreate},
		{"start-container/cgroup", stepStart},
		{"start-container/process", stepStart},
		{"start-container/done", stepStart},
		{"stop-pod-sandbox/pod-init", stepStopPod},
		{"stop-pod-sandbox/network", stepStopPod},
		{"remove-pod-sandbox/containers", stepRemovePod},
		{"remove-pod-sandbox/pod-dir", stepRemovePod},
	}
	// In the node's pid namespace the containers outlive a dead pod init:
	// the second variant checks that nothing of them is left either.
	variants := []struct {
		name string
		pid  runtimeapi.NamespaceMode
	}{
		{"pod-pid", runtimeapi.NamespaceMode_CONTAINER},
		{"node-pid", runtimeapi.NamespaceMode_NODE},
	}
	reg := suite.Image(t)
	for _, v := range variants {
		for _, tc := range cases {
			if tc.at == stepPull && v.pid == runtimeapi.NamespaceMode_NODE {
				continue // a pull has no pod
			}
			t.Run(v.name+"/"+strings.ReplaceAll(tc.point, "/", "_"), func(t *testing.T) {
				runFaultCase(t, reg.Ref, tc.point, tc.at, v.pid)
			})
		}
	}
}

// runFaultCase runs one pod's lifecycle into fault point `point` inside
// step at, restarts cubbyd and finishes the lifecycle.
func runFaultCase(t *testing.T, image, point string, at step, pid runtimeapi.NamespaceMode) {
	env := suite.NewEnv(t, framework.WithEnv(faultEnv+"="+point))
	ctx := framework.Context(t)
	w := &crashWorld{
		t:     t,
		env:   env,
		image: image,
		pod:   podConfig("crash", t.TempDir()),
		ctr:   containerConfig("sleeper", image, "sleeper.log", "sleep", "3600"),
	}
	if pid == runtimeapi.NamespaceMode_NODE {
		w.pod.Linux.SecurityContext.NamespaceOptions.Pid = pid
	}
	w.ctr.Linux.SecurityContext.NamespaceOptions.Pid = pid
	t.Cleanup(func() { removeAllPods(t, env) })

	// Up to the faulted step, which must lose its connection.
	for s := stepPull; s <= at; s++ {
		err := w.do(ctx, s)
		if s < at {
			if err != nil {
				t.Fatalf("%s before the fault: %v", s, err)
			}
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("%s with fault %s: got %v, want the connection lost (Unavailable)", s, point, err)
		}
	}
	if err := env.Daemon.WaitExit(30 * time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("cubbyd did not die at %s: %v", point, err)
	}
	env.StartAgain(t) // no fault this time
	w.finish(ctx, at)

	removeAllPods(t, env)
	w.checkGone(t)
}

// finish checks the state after the restart and takes kubelet's next steps
// from the faulted one to a removed pod.
func (w *crashWorld) finish(ctx context.Context, at step) {
	t := w.t
	switch at {
	case stepPull:
		// The image is recorded whole or not at all; a new pull works
		// and the image runs.
		if st, err := w.env.ImageService().ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: w.image}}); err != nil {
			t.Fatalf("image status after restart: %v", err)
		} else if st.GetImage() != nil && st.GetImage().GetSize() == 0 {
			t.Errorf("image %s after restart: listed with size 0", w.image)
		}
		w.must(ctx, stepPull, stepRunPod, stepCreate, stepStart)
		w.checkRunning(ctx)
		w.must(ctx, stepStopPod, stepRemovePod)

	case stepRunPod:
		// The half-made pod is gone or NOTREADY, a finished one READY;
		// kubelet's retry of the same RunPodSandbox gives a ready pod: the
		// finished one if there is one.
		ready := ""
		for _, p := range w.pods(ctx) {
			if p.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY && ready == "" {
				ready = p.GetId()
			} else if p.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("pod %q after restart: %s, want one READY or NOTREADY ones or none", p.GetId(), p.GetState())
			}
		}
		if err := w.do(ctx, stepRunPod); err != nil {
			t.Fatalf("kubelet's retry of RunPodSandbox: %v", err)
		}
		if ready != "" && w.podID != ready {
			t.Errorf("retry of RunPodSandbox made pod %q besides the ready %q", w.podID, ready)
		}
		if st, _ := podStatus(t, w.env, w.podID, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() == "" {
			t.Errorf("retried pod %q: state %s ip %q, want READY with an IP", w.podID, st.GetState(), st.GetNetwork().GetIp())
		}
		w.must(ctx, stepCreate, stepStart)
		w.checkRunning(ctx)
		w.must(ctx, stepStopPod, stepRemovePod)

	case stepCreate:
		// The half-made container is gone or CREATED (and starts);
		// kubelet's retry of CreateContainer gives a container that runs.
		created := ""
		for _, c := range w.containers(ctx) {
			if c.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
				t.Errorf("half-made container %q after restart: %s, want CREATED or gone", c.GetId(), c.GetState())
			}
			created = c.GetId()
		}
		if st, _ := podStatus(t, w.env, w.podID, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %q after restart: %s, want READY", w.podID, st.GetState())
		}
		w.must(ctx, stepCreate)
		if created != "" && w.ctrID != created {
			t.Errorf("retry of CreateContainer made container %q besides the created %q", w.ctrID, created)
		}
		w.must(ctx, stepStart)
		w.checkRunning(ctx)
		w.must(ctx, stepStopPod, stepRemovePod)

	case stepStart:
		// The interrupted start either ran or failed: RUNNING, or EXITED
		// with nothing of it running. Never stuck in CREATED.
		st, _ := containerStatus(t, w.env, w.ctrID, false)
		switch st.GetState() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			if st.GetReason() == "" {
				t.Errorf("container %q exited by the crash without a reason", w.ctrID)
			}
			t.Logf("interrupted start: EXITED, %s: %s", st.GetReason(), st.GetMessage())
			// kubelet removes it and creates the next attempt.
			if _, err := w.rs().RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: w.ctrID}); err != nil {
				t.Fatalf("remove container after a failed start: %v", err)
			}
			w.ctr.Metadata.Attempt++
			w.must(ctx, stepCreate, stepStart)
		default:
			t.Fatalf("container %q after an interrupted start: %s, want RUNNING or EXITED", w.ctrID, st.GetState())
		}
		w.checkRunning(ctx)
		w.must(ctx, stepStopPod, stepRemovePod)

	case stepStopPod:
		// Stopped or not, the pod is NOTREADY and nothing of it runs; a
		// second stop and the removal finish it.
		if st, _ := podStatus(t, w.env, w.podID, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("pod %q after a crash in its stop: %s, want NOTREADY", w.podID, st.GetState())
		}
		if st, _ := containerStatus(t, w.env, w.ctrID, false); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("container %q after a crash in its pod's stop: %s, want EXITED", w.ctrID, st.GetState())
		}
		w.must(ctx, stepStopPod, stepRemovePod)

	case stepRemovePod:
		for _, p := range w.pods(ctx) {
			if p.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("pod %q after a crash in its removal: %s, want NOTREADY or gone", p.GetId(), p.GetState())
			}
		}
		w.must(ctx, stepRemovePod)
	}
	if n := len(w.pods(ctx)); n != 0 {
		t.Errorf("%d pods left after the lifecycle", n)
	}
}

// must runs steps that have to succeed.
func (w *crashWorld) must(ctx context.Context, steps ...step) {
	w.t.Helper()
	for _, s := range steps {
		if err := w.do(ctx, s); err != nil {
			w.t.Fatalf("%s after the restart: %v", s, err)
		}
	}
}

// checkRunning checks that the container runs, from inside it.
func (w *crashWorld) checkRunning(ctx context.Context) {
	w.t.Helper()
	resp, err := w.rs().ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: w.ctrID, Cmd: []string{"echo", "alive"}, Timeout: 10})
	if err != nil || strings.TrimSpace(string(resp.GetStdout())) != "alive" {
		w.t.Errorf("exec in container %q: %v %q", w.ctrID, err, resp.GetStdout())
	}
}

// checkGone checks that nothing of the world is left on the host.
func (w *crashWorld) checkGone(t *testing.T) {
	t.Helper()
	var left []string
	err := framework.Poll(framework.Context(t), 100*time.Millisecond, func() (bool, error) {
		var err error
		left, err = w.env.Leftovers()
		if err != nil {
			return false, err
		}
		for _, p := range append(append([]framework.Process(nil), w.inits...), w.ctrPid...) {
			if ok, _ := p.Exists(); ok {
				left = append(left, "process "+itoa(p.Pid)+" (zombie or alive)")
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		for _, l := range left {
			t.Errorf("leak: %s", l)
		}
	}
}

// removeAllPods stops and removes every pod, as kubelet's garbage
// collection does with pods it does not know.
func removeAllPods(t *testing.T, env *framework.Env) {
	if env.Private && !env.Daemon.Running() {
		return // died: the framework's cleanup reports what is left
	}
	ctx, cancel := framework.CleanupContext()
	defer cancel()
	resp, err := env.RuntimeService().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("list pods: %v", err)
		return
	}
	for _, p := range resp.GetItems() {
		if _, err := env.RuntimeService().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("stop pod %q: %v", p.GetId(), err)
		}
		if _, err := env.RuntimeService().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("remove pod %q: %v", p.GetId(), err)
		}
	}
}
