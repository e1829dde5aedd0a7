package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options configure a run.
type Options struct {
	// Endpoint is the CRI endpoint, "unix:///path" or a bare socket path.
	Endpoint string
	// Image is the container image; pulled through the CRI if missing.
	Image string
	// N is the number of pods in each section; Concurrency the burst's
	// parallelism.
	N           int
	Concurrency int
	// Idle is how long the pods idle while their CPU is measured.
	Idle time.Duration
	// ExecCalls and ListCalls are the samples per ExecSync and List call.
	ExecCalls int
	ListCalls int
	// Timeout bounds each CRI call.
	Timeout time.Duration
	// DaemonPID is the CRI daemon's pid; 0 finds the process that holds the
	// endpoint's listening socket.
	DaemonPID int
	// ProcRoot is the host's procfs, "/proc" if empty.
	ProcRoot string
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (o *Options) validate() error {
	switch {
	case o.Endpoint == "":
		return errors.New("no endpoint")
	case o.Image == "":
		return errors.New("no image")
	case o.N < 1:
		return fmt.Errorf("n %d: must be at least 1", o.N)
	case o.Concurrency < 1:
		return fmt.Errorf("concurrency %d: must be at least 1", o.Concurrency)
	case o.ExecCalls < 1 || o.ListCalls < 1:
		return errors.New("exec and list calls must be at least 1")
	case o.Timeout <= 0:
		return errors.New("timeout must be positive")
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// cleanupTimeout bounds the removal of the bench's pods after the run, also
// after an interruption.
const cleanupTimeout = 5 * time.Minute

// runner is the state of one run.
type runner struct {
	opts   Options
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient
	proc   Proc
	runID  string
	logDir string
	pods   *tracker
	report *Report
}

// Run benchmarks the runtime at opts.Endpoint. When ctx is cancelled (the
// caller's signal handler) it stops, and in every case it removes each pod
// it created before returning. The report holds every section that ran,
// also when Run returns an error.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("bench options: %w", err)
	}
	target := opts.Endpoint
	if !strings.Contains(target, "://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", opts.Endpoint, err)
	}
	defer conn.Close()

	logDir, err := os.MkdirTemp("", "cubby-bench-")
	if err != nil {
		return nil, fmt.Errorf("make log directory: %w", err)
	}
	defer os.RemoveAll(logDir)

	r := &runner{
		opts:   opts,
		rt:     runtimeapi.NewRuntimeServiceClient(conn),
		img:    runtimeapi.NewImageServiceClient(conn),
		proc:   Proc{Root: opts.ProcRoot},
		runID:  randomHex(6),
		logDir: logDir,
		pods:   newTracker(),
		report: &Report{
			Endpoint:    opts.Endpoint,
			Image:       opts.Image,
			N:           opts.N,
			Concurrency: opts.Concurrency,
			Started:     time.Now().UTC(),
			PodStart:    PodStartResult{Status: StatusNotRun},
			Burst:       BurstResult{Status: StatusNotRun, Pods: opts.N, Concurrency: opts.Concurrency},
			Idle:        IdleResult{Status: StatusNotRun, Pods: opts.N, IdleSeconds: opts.Idle.Seconds()},
			Exec:        Call{Name: "ExecSync", Status: StatusNotRun},
			List:        ListResult{Status: StatusNotRun, Pods: opts.N},
		},
	}
	r.report.RunID = r.runID
	defer func() {
		if cerr := r.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	return r.report, r.run(ctx)
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", a...)
}

// call returns a context for one CRI call.
func (r *runner) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.Timeout)
}

func (r *runner) run(ctx context.Context) error {
	cctx, cancel := r.call(ctx)
	v, err := r.rt.Version(cctx, &runtimeapi.VersionRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("version of %s: %w", r.opts.Endpoint, err)
	}
	r.report.RuntimeName, r.report.RuntimeVersion = v.GetRuntimeName(), v.GetRuntimeVersion()
	r.logf("run %s against %s %s at %s", r.runID, v.GetRuntimeName(), v.GetRuntimeVersion(), r.opts.Endpoint)

	if err := r.removeStale(ctx); err != nil {
		return err
	}
	if err := r.ensureImage(ctx); err != nil {
		return err
	}
	base, err := r.baseline()
	if err != nil {
		return err
	}

	// Section 1 leaves its N pods running for sections 3-5, then tears
	// them down timed.
	pods, err := r.podStart(ctx)
	r.report.PodStart.Status = statusOf(err)
	if err != nil {
		return err
	}
	r.report.Idle = r.idle(ctx, base, pods)
	r.report.Exec = r.execSync(ctx, pods[0].ContainerID)
	r.report.List = r.list(ctx, len(pods))
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.podTeardown(ctx, pods); err != nil {
		r.report.PodStart.Status = statusOf(err)
		return err
	}
	err = r.burst(ctx)
	r.report.Burst.Status = statusOf(err)
	return err
}

// removeStale removes pods that an earlier, interrupted run left behind.
func (r *runner) removeStale(ctx context.Context) error {
	cctx, cancel := r.call(ctx)
	defer cancel()
	ids, err := labelledPods(cctx, r.rt, "")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	r.logf("removing %d pods left by an earlier run", len(ids))
	if err := removePods(cctx, r.rt, ids, r.opts.Concurrency); err != nil {
		return fmt.Errorf("remove stale bench pods: %w", err)
	}
	return nil
}

// ensureImage pulls the image through the CRI unless the runtime has it.
func (r *runner) ensureImage(ctx context.Context) error {
	cctx, cancel := r.call(ctx)
	defer cancel()
	spec := &runtimeapi.ImageSpec{Image: r.opts.Image}
	st, err := r.img.ImageStatus(cctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil {
		return fmt.Errorf("image status of %q: %w", r.opts.Image, err)
	}
	if st.GetImage() != nil {
		return nil
	}
	r.logf("pulling %s", r.opts.Image)
	if _, err := r.img.PullImage(cctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
		return fmt.Errorf("pull %q: %w", r.opts.Image, err)
	}
	return nil
}

// cleanup removes every pod of this run: those it got an id for, and any
// the runtime made for a RunPodSandbox that was interrupted. It runs on its
// own context so that the interruption that ended the run cannot stop it.
func (r *runner) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	if ids := r.pods.ids(); len(ids) > 0 {
		r.logf("removing %d pods", len(ids))
		errs = append(errs, removePods(ctx, r.rt, ids, r.opts.Concurrency))
	}
	ids, err := labelledPods(ctx, r.rt, r.runID)
	errs = append(errs, err)
	if len(ids) > 0 {
		r.logf("removing %d more labelled pods", len(ids))
		errs = append(errs, removePods(ctx, r.rt, ids, r.opts.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up bench pods of run %s: %w", r.runID, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// podDir makes the log directory of the pod named name.
func (r *runner) podDir(name string) (string, error) {
	dir := filepath.Join(r.logDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make log directory of pod %q: %w", name, err)
	}
	return dir, nil
}
