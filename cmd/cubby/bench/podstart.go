package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Names of the timed steps of a pod start and teardown.
const (
	stepRunPod       = "RunPodSandbox"
	stepCreate       = "CreateContainer"
	stepStart        = "StartContainer"
	stepStartE2E     = "pod start end to end"
	stepStop         = "StopContainer"
	stepRemove       = "RemoveContainer"
	stepStopPod      = "StopPodSandbox"
	stepRemovePod    = "RemovePodSandbox"
	stepTeardownE2E  = "pod teardown end to end"
	stepsPerLifetime = 4
)

// startTimes are the durations of one pod start: run, create, start.
type startTimes [stepsPerLifetime - 1]time.Duration

// startPod runs one pod with one sleep container and times each call.
func (r *runner) startPod(ctx context.Context, name string) (benchPod, startTimes, error) {
	var t startTimes
	dir, err := r.podDir(name)
	if err != nil {
		return benchPod{}, t, err
	}
	cfg := podConfig(r.runID, name, dir)

	cctx, cancel := r.call(ctx)
	defer cancel()
	t0 := time.Now()
	pr, err := r.rt.RunPodSandbox(cctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return benchPod{}, t, fmt.Errorf("run pod %q: %w", name, err)
	}
	t1 := time.Now()
	p := benchPod{ID: pr.GetPodSandboxId()}
	r.pods.add(p.ID)

	cr, err := r.rt.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  p.ID,
		Config:        containerConfig(r.runID, r.opts.Image),
		SandboxConfig: cfg,
	})
	if err != nil {
		return p, t, fmt.Errorf("create container in pod %q: %w", p.ID, err)
	}
	t2 := time.Now()
	p.ContainerID = cr.GetContainerId()

	if _, err := r.rt.StartContainer(cctx, &runtimeapi.StartContainerRequest{ContainerId: p.ContainerID}); err != nil {
		return p, t, fmt.Errorf("start container %q: %w", p.ContainerID, err)
	}
	t3 := time.Now()
	return p, startTimes{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)}, nil
}

// podStart is section 1, first half: N pods one after the other. The pods
// stay running.
func (r *runner) podStart(ctx context.Context) ([]benchPod, error) {
	r.logf("starting %d pods one by one", r.opts.N)
	var (
		pods              []benchPod
		run, create, strt []time.Duration
		e2e               []time.Duration
	)
	for i := range r.opts.N {
		p, t, err := r.startPod(ctx, fmt.Sprintf("seq-%d", i))
		if err != nil {
			return nil, err
		}
		pods = append(pods, p)
		run, create, strt = append(run, t[0]), append(create, t[1]), append(strt, t[2])
		e2e = append(e2e, t[0]+t[1]+t[2])
	}
	r.report.PodStart.Start = []Call{
		latencyCall(stepRunPod, run),
		latencyCall(stepCreate, create),
		latencyCall(stepStart, strt),
		latencyCall(stepStartE2E, e2e),
	}
	return pods, nil
}

// podTeardown is section 1, second half: the pods stopped and removed one
// after the other, each call timed. StopContainer has timeout 0 (kill at
// once): the bench measures the runtime, not a grace period.
func (r *runner) podTeardown(ctx context.Context, pods []benchPod) error {
	r.logf("tearing down %d pods one by one", len(pods))
	var times [stepsPerLifetime + 1][]time.Duration
	for _, p := range pods {
		cctx, cancel := r.call(ctx)
		steps := []func() error{
			func() error {
				_, err := r.rt.StopContainer(cctx, &runtimeapi.StopContainerRequest{ContainerId: p.ContainerID})
				return err
			},
			func() error {
				_, err := r.rt.RemoveContainer(cctx, &runtimeapi.RemoveContainerRequest{ContainerId: p.ContainerID})
				return err
			},
			func() error {
				_, err := r.rt.StopPodSandbox(cctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.ID})
				return err
			},
			func() error {
				_, err := r.rt.RemovePodSandbox(cctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.ID})
				return err
			},
		}
		var total time.Duration
		for i, step := range steps {
			t0 := time.Now()
			if err := step(); err != nil {
				cancel()
				return fmt.Errorf("tear down pod %q: step %d: %w", p.ID, i+1, err)
			}
			d := time.Since(t0)
			times[i] = append(times[i], d)
			total += d
		}
		cancel()
		times[stepsPerLifetime] = append(times[stepsPerLifetime], total)
		r.pods.done(p.ID)
	}
	r.report.PodStart.Teardown = []Call{
		latencyCall(stepStop, times[0]),
		latencyCall(stepRemove, times[1]),
		latencyCall(stepStopPod, times[2]),
		latencyCall(stepRemovePod, times[3]),
		latencyCall(stepTeardownE2E, times[4]),
	}
	return nil
}

// burst is section 2: N pods started Concurrency at a time, timed until the
// last StartContainer returned, then removed the same way.
func (r *runner) burst(ctx context.Context) error {
	n, c := r.opts.N, r.opts.Concurrency
	r.logf("starting %d pods, %d at a time", n, c)
	b := &r.report.Burst
	b.Pods, b.Concurrency = n, c

	var (
		mu    sync.Mutex
		pods  []benchPod
		e2e   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, c)
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, t, err := r.startPod(ctx, fmt.Sprintf("burst-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				first = cmpErr(first, err)
				return
			}
			pods = append(pods, p)
			e2e = append(e2e, t[0]+t[1]+t[2])
		}()
	}
	wg.Wait()
	total := time.Since(t0)
	if first != nil {
		return first
	}
	b.TotalMS = ms(total)
	b.PodsPerSec = float64(n) / total.Seconds()
	s := Summarize(e2e)
	b.PerPod = &s

	running, err := r.running(ctx)
	if err != nil {
		return err
	}
	b.Running = running

	ids := make([]string, len(pods))
	for i, p := range pods {
		ids[i] = p.ID
	}
	t1 := time.Now()
	cctx, cancel := r.call(ctx)
	defer cancel()
	if err := removePods(cctx, r.rt, ids, c); err != nil {
		return fmt.Errorf("tear down burst: %w", err)
	}
	b.TeardownMS = ms(time.Since(t1))
	for _, id := range ids {
		r.pods.done(id)
	}
	return nil
}

// running counts this run's running containers.
func (r *runner) running(ctx context.Context) (int, error) {
	cctx, cancel := r.call(ctx)
	defer cancel()
	resp, err := r.rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{LabelRun: r.runID},
	}})
	if err != nil {
		return 0, fmt.Errorf("list running bench containers: %w", err)
	}
	return len(resp.GetContainers()), nil
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func latencyCall(name string, samples []time.Duration) Call {
	s := Summarize(samples)
	return Call{Name: name, Latency: &s}
}
