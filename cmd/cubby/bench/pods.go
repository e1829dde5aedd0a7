package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// LabelRun is the label every bench pod and container carries; its value is
// the run id. Pods with this label key that a run did not create are
// leftovers of an interrupted earlier run and are removed at start.
const LabelRun = "bench.cubby.dev/run"

// podConfig is a pod like kubelet sends for a plain pod: pod network, pod
// ipc, a pid namespace per container.
func podConfig(runID, name, logDir string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name,
			Uid:       runID + "-" + name,
			Namespace: "cubby-bench",
			Attempt:   0,
		},
		Hostname:     name,
		LogDirectory: logDir,
		Labels:       map[string]string{LabelRun: runID},
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

// containerConfig is an idle container: sleep from the bench image.
func containerConfig(runID, image string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep.log",
		Labels:   map[string]string{LabelRun: runID},
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

// benchPod is one pod the bench made and its one container.
type benchPod struct {
	ID          string
	ContainerID string
}

// tracker remembers every pod id the bench got back, so that cleanup can
// remove them even when the run is interrupted between two calls.
type tracker struct {
	mu   sync.Mutex
	pods map[string]bool
}

func newTracker() *tracker { return &tracker{pods: make(map[string]bool)} }

func (t *tracker) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pods[id] = true
}

func (t *tracker) done(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, id)
}

func (t *tracker) ids() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]string, 0, len(t.pods))
	for id := range t.pods {
		ids = append(ids, id)
	}
	return ids
}

// removePod stops and removes a pod; RemovePodSandbox removes its
// containers. An already gone pod is success.
func removePod(ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) error {
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("stop pod %q: %w", id, err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("remove pod %q: %w", id, err)
	}
	return nil
}

// labelledPods lists the pods carrying LabelRun; with runID set, only that
// run's.
func labelledPods(ctx context.Context, rt runtimeapi.RuntimeServiceClient, runID string) ([]string, error) {
	req := &runtimeapi.ListPodSandboxRequest{}
	if runID != "" {
		req.Filter = &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{LabelRun: runID}}
	}
	resp, err := rt.ListPodSandbox(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list bench pods: %w", err)
	}
	var ids []string
	for _, p := range resp.GetItems() {
		// A runtime may ignore the filter; check the label ourselves.
		if v, ok := p.GetLabels()[LabelRun]; ok && (runID == "" || v == runID) {
			ids = append(ids, p.GetId())
		}
	}
	return ids, nil
}

// removePods removes ids with up to workers calls at a time and returns
// every failure.
func removePods(ctx context.Context, rt runtimeapi.RuntimeServiceClient, ids []string, workers int) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, max(workers, 1))
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := removePod(ctx, rt, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
