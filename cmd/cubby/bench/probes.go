package bench

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execSync is section 4: ExecSync(["true"]) on an idle container, the way
// kubelet runs exec probes.
func (r *runner) execSync(ctx context.Context, containerID string) Call {
	const name = "ExecSync"
	r.logf("%d x ExecSync", r.opts.ExecCalls)
	samples, err := r.repeat(ctx, r.opts.ExecCalls, func(ctx context.Context) error {
		resp, err := r.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: containerID, Cmd: []string{"true"}, Timeout: 10})
		if err != nil {
			return err
		}
		if resp.GetExitCode() != 0 {
			return fmt.Errorf("exec true in %q: exit code %d: %s", containerID, resp.GetExitCode(), resp.GetStderr())
		}
		return nil
	})
	if err != nil {
		return Call{Name: name, Status: statusOf(err)}
	}
	return latencyCall(name, samples)
}

// list is section 5: the calls kubelet's relist makes, with pods running.
func (r *runner) list(ctx context.Context, pods int) ListResult {
	r.logf("%d x each List call", r.opts.ListCalls)
	calls := []struct {
		name string
		do   func(context.Context) error
	}{
		{"ListPodSandbox", func(ctx context.Context) error {
			_, err := r.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		}},
		{"ListContainers", func(ctx context.Context) error {
			_, err := r.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		}},
		{"ListContainerStats", func(ctx context.Context) error {
			_, err := r.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			return err
		}},
	}
	res := ListResult{Pods: pods}
	for _, c := range calls {
		samples, err := r.repeat(ctx, r.opts.ListCalls, c.do)
		if err != nil {
			res.Calls = append(res.Calls, Call{Name: c.name, Status: statusOf(err)})
			continue
		}
		res.Calls = append(res.Calls, latencyCall(c.name, samples))
	}
	return res
}

// repeat times n calls of do; the first error stops it.
func (r *runner) repeat(ctx context.Context, n int, do func(context.Context) error) ([]time.Duration, error) {
	samples := make([]time.Duration, 0, n)
	for range n {
		cctx, cancel := r.call(ctx)
		t0 := time.Now()
		err := do(cctx)
		d := time.Since(t0)
		cancel()
		if err != nil {
			return nil, err
		}
		samples = append(samples, d)
	}
	return samples, nil
}
