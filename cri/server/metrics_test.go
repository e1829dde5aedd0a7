package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestInterceptorRecordsMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	call := UnaryInterceptor(slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	run := func(method string, h grpc.UnaryHandler) {
		_, _ = call(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/" + method}, h)
	}
	ok := func(resp any) grpc.UnaryHandler {
		return func(context.Context, any) (any, error) { return resp, nil }
	}
	run("Version", ok(&runtimeapi.VersionResponse{}))
	run("Version", ok(&runtimeapi.VersionResponse{}))
	run("PodSandboxStatus", func(context.Context, any) (any, error) { return nil, errors.Join(errNotFound) })
	run("StopContainer", func(context.Context, any) (any, error) { panic("boom") })
	run("ExecSync", ok(&runtimeapi.ExecSyncResponse{ExitCode: 0}))
	run("ExecSync", ok(&runtimeapi.ExecSyncResponse{ExitCode: 3}))
	run("ExecSync", func(context.Context, any) (any, error) {
		return nil, status.Error(codes.DeadlineExceeded, "timed out")
	})

	for _, tc := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("Version"), 2},
		{m.requests.WithLabelValues("PodSandboxStatus"), 1},
		{m.errors.WithLabelValues("PodSandboxStatus", "NotFound"), 1},
		{m.errors.WithLabelValues("StopContainer", "Unknown"), 1}, // a panic counts as the error it became
		{m.errors.WithLabelValues("ExecSync", "DeadlineExceeded"), 1},
		{m.execSync.WithLabelValues("exit_zero"), 1},
		{m.execSync.WithLabelValues("exit_nonzero"), 1},
		{m.execSync.WithLabelValues("error"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c.(prometheus.Metric).Desc(), got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration, "cubby_cri_request_duration_seconds"); n != 4 {
		t.Errorf("latency histograms for %d methods, want 4", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(""), "cubby_exec_sync_duration_seconds"); err == nil || !strings.Contains(err.Error(), "_count 3") {
		t.Errorf("exec sync histogram does not count 3 calls: %v", err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	call := UnaryInterceptor(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	_, err := call(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Version"}, func(context.Context, any) (any, error) { return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
}

func TestStateLabel(t *testing.T) {
	for in, want := range map[string]string{"SANDBOX_READY": "ready", "SANDBOX_NOTREADY": "notready", "CONTAINER_EXITED": "exited"} {
		if got := stateLabel(in); got != want {
			t.Errorf("stateLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStepMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	start := newStepTimer(m.podStartStep)
	start.done("cgroups")
	start.done("pod_init")
	stop := newStepTimer(m.podStopStep)
	stop.done("pod_init")
	m.podInitExit("unexpected")
	create := newStepTimer(m.containerCreateStep)
	create.done("mount")
	newStepTimer(m.containerStartStep).done("process")
	if n := testutil.CollectAndCount(m.ctrCreateSteps); n != 1 {
		t.Errorf("container create step series = %d, want 1", n)
	}
	if n := testutil.CollectAndCount(m.ctrStartSteps); n != 1 {
		t.Errorf("container start step series = %d, want 1", n)
	}
	if !strings.HasPrefix(start.String(), "cgroups=") || !strings.Contains(start.String(), " pod_init=") {
		t.Errorf("step log %q", start.String())
	}
	if n := testutil.CollectAndCount(m.podStartSteps); n != 2 {
		t.Errorf("pod start step series = %d, want 2", n)
	}
	if n := testutil.CollectAndCount(m.podStopSteps); n != 1 {
		t.Errorf("pod stop step series = %d, want 1", n)
	}
	if got := testutil.ToFloat64(m.podInitExits.WithLabelValues("unexpected")); got != 1 {
		t.Errorf("pod init exits = %v, want 1", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	// Without metrics the timer still times, for the debug log.
	var none *Metrics
	nt := newStepTimer(none.podStartStep)
	nt.done("cgroups")
	none.podInitExit("unexpected")
}
