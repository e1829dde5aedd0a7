package server

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Metrics are the CRI server's Prometheus metrics. The interceptors record
// every call (instrument.go); a nil *Metrics records nothing.
type Metrics struct {
	requests         *prometheus.CounterVec
	errors           *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	execSync         *prometheus.CounterVec
	execSyncDuration prometheus.Histogram
	podStartSteps    *prometheus.HistogramVec
	podStopSteps     *prometheus.HistogramVec
	ctrCreateSteps   *prometheus.HistogramVec
	ctrStartSteps    *prometheus.HistogramVec
	podInitExits     *prometheus.CounterVec
}

// stepBuckets span a cgroup write (100µs) to a slow CNI plugin (tens of
// seconds).
var stepBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

// callBuckets span a Version call (a millisecond) to a large pull (minutes).
var callBuckets = prometheus.ExponentialBuckets(0.001, 4, 10)

// NewMetrics creates the CRI call metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cubby_cri_requests_total",
			Help: "CRI calls received, by method.",
		}, []string{"method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cubby_cri_request_errors_total",
			Help: "CRI calls that failed, by method and gRPC code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cubby_cri_request_duration_seconds",
			Help:    "Time to answer a unary CRI call, by method.",
			Buckets: callBuckets,
		}, []string{"method"}),
		execSync: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cubby_exec_sync_total",
			Help: "ExecSync calls by result: exit_zero, exit_nonzero (the command ran and failed) or error (it did not run to its end: timeout, no such container...).",
		}, []string{"result"}),
		execSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cubby_exec_sync_duration_seconds",
			Help:    "Time from an ExecSync call to its answer.",
			Buckets: callBuckets,
		}),
		podStartSteps: stepHistogram("cubby_pod_start_step_duration_seconds",
			"Time each step of RunPodSandbox took: cgroups, files, pod_init, network, record."),
		podStopSteps: stepHistogram("cubby_pod_stop_step_duration_seconds",
			"Time each step of stopping a pod took: pod_init, network, namespaces_cgroup, record."),
		ctrCreateSteps: stepHistogram("cubby_container_create_step_duration_seconds",
			"Time each step of CreateContainer took: snapshot, mount (the rootfs overlay), spec, bundle."),
		ctrStartSteps: stepHistogram("cubby_container_start_step_duration_seconds",
			"Time each step of StartContainer took: cgroup, process (the pod init starts it), record."),
		podInitExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cubby_pod_init_exits_total",
			Help: "Pod inits that exited by reason; unexpected: a ready pod's init died without being stopped (the pod went NotReady).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration, m.execSync, m.execSyncDuration, m.podStartSteps, m.podStopSteps, m.ctrCreateSteps, m.ctrStartSteps, m.podInitExits} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one finished call; resp is nil for streaming calls.
func (m *Metrics) observe(method string, took time.Duration, unary bool, resp any, err error) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method).Inc()
	if err != nil {
		m.errors.WithLabelValues(method, status.Code(err).String()).Inc()
	}
	if unary {
		m.duration.WithLabelValues(method).Observe(took.Seconds())
	}
	if method == "ExecSync" {
		m.execSyncDuration.Observe(took.Seconds())
		m.execSync.WithLabelValues(execSyncResult(resp, err)).Inc()
	}
}

func execSyncResult(resp any, err error) string {
	r, ok := resp.(*runtimeapi.ExecSyncResponse)
	switch {
	case err != nil || !ok:
		return "error"
	case r.GetExitCode() == 0:
		return "exit_zero"
	default:
		return "exit_nonzero"
	}
}

// StateCollector counts the server's pods and containers by state at each
// scrape: cubby_pods{state} and cubby_containers{state}.
func (s *Server) StateCollector() prometheus.Collector {
	return &stateCollector{
		s:    s,
		pods: prometheus.NewDesc("cubby_pods", "Pod sandboxes by state (ready, notready).", []string{"state"}, nil),
		ctrs: prometheus.NewDesc("cubby_containers", "Containers by state (created, running, exited, unknown).", []string{"state"}, nil),
	}
}

type stateCollector struct {
	s          *Server
	pods, ctrs *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pods
	ch <- c.ctrs
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	pods := map[string]int{}
	for _, st := range runtimeapi.PodSandboxState_name {
		pods[stateLabel(st)] = 0
	}
	for _, p := range c.s.objs.pods.list() {
		pods[stateLabel(podState(p.status().State).String())]++
	}
	ctrs := map[string]int{}
	for _, st := range runtimeapi.ContainerState_name {
		ctrs[stateLabel(st)] = 0
	}
	for _, ct := range c.s.objs.ctrs.list() {
		ctrs[stateLabel(containerState(ct.status().State).String())]++
	}
	for state, n := range pods {
		ch <- prometheus.MustNewConstMetric(c.pods, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range ctrs {
		ch <- prometheus.MustNewConstMetric(c.ctrs, prometheus.GaugeValue, float64(n), state)
	}
}

// stateLabel turns "SANDBOX_NOTREADY" and "CONTAINER_RUNNING" into
// "notready" and "running".
func stateLabel(enum string) string {
	_, s, _ := strings.Cut(enum, "_")
	return strings.ToLower(s)
}

// podStartStep records one step of a pod start.
func (m *Metrics) podStartStep(step string, took time.Duration) {
	if m != nil {
		observeStep(m.podStartSteps, step, took)
	}
}

// podStopStep records one step of a pod stop.
func (m *Metrics) podStopStep(step string, took time.Duration) {
	if m != nil {
		observeStep(m.podStopSteps, step, took)
	}
}

// containerCreateStep records one step of a CreateContainer.
func (m *Metrics) containerCreateStep(step string, took time.Duration) {
	if m != nil {
		observeStep(m.ctrCreateSteps, step, took)
	}
}

// containerStartStep records one step of a StartContainer.
func (m *Metrics) containerStartStep(step string, took time.Duration) {
	if m != nil {
		observeStep(m.ctrStartSteps, step, took)
	}
}

func observeStep(vec *prometheus.HistogramVec, step string, took time.Duration) {
	vec.WithLabelValues(step).Observe(took.Seconds())
}

// podInitExit counts a pod init that exited for reason.
func (m *Metrics) podInitExit(reason string) {
	if m != nil {
		m.podInitExits.WithLabelValues(reason).Inc()
	}
}

// stepHistogram is a histogram of the durations of a call's steps, by step.
func stepHistogram(name, help string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: stepBuckets}, []string{"step"})
}
