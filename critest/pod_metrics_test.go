package critest

import (
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodSandboxMetrics checks the cAdvisor-named metrics of a running pod:
// every metric has a descriptor with the same number of labels, and the
// values follow what the container does (its memory limit, its processes,
// the traffic the node sent it).
func TestPodSandboxMetrics(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	rs := env.RuntimeService()
	ctx := framework.Context(t)

	descs, err := rs.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if status.Code(err) == codes.Unimplemented {
		t.Skip("runtime does not implement CRI metrics")
	}
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]int{}
	for _, d := range descs.GetDescriptors() {
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 {
			t.Errorf("descriptor %v lacks help or labels", d)
		}
		labels[d.GetName()] = len(d.GetLabelKeys())
	}

	pod := podConfig("metrics", t.TempDir())
	podID := runPod(t, env, pod)
	st, _ := podStatus(t, env, podID, false)
	greeting := "metrics-" + framework.RandomHex(4)
	cfg := containerConfig("server", reg.Ref, "server.log", "sh", "-c",
		fmt.Sprintf("while true; do echo %s | nc -l -p 8080; done", greeting))
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	if got := readGreeting(t, net.JoinHostPort(st.GetNetwork().GetIp(), "8080")); got != greeting {
		t.Fatalf("pod said %q, want %q", got, greeting)
	}

	resp, err := rs.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var pm *runtimeapi.PodSandboxMetrics
	for _, m := range resp.GetPodMetrics() {
		if m.GetPodSandboxId() == podID {
			pm = m
		}
	}
	if pm == nil {
		t.Fatalf("no metrics for pod %q", podID)
	}
	values := map[string]uint64{}
	check := func(m *runtimeapi.Metric) {
		n, ok := labels[m.GetName()]
		if !ok {
			t.Errorf("metric %s has no descriptor", m.GetName())
		} else if len(m.GetLabelValues()) != n {
			t.Errorf("metric %s: %d label values, descriptor has %d keys", m.GetName(), len(m.GetLabelValues()), n)
		}
		if _, seen := values[m.GetName()]; !seen {
			values[m.GetName()] = m.GetValue().GetValue()
		}
	}
	for _, m := range pm.GetMetrics() {
		check(m)
	}
	var found bool
	for _, cm := range pm.GetContainerMetrics() {
		if cm.GetContainerId() == cid {
			found = true
			for _, m := range cm.GetMetrics() {
				check(m)
			}
		}
	}
	if !found {
		t.Fatalf("no metrics for container %q", cid)
	}
	for name, want := range map[string]func(uint64) bool{
		"container_spec_memory_limit_bytes":      func(v uint64) bool { return v == 96<<20 },
		"container_memory_working_set_bytes":     func(v uint64) bool { return v > 0 },
		"container_processes":                    func(v uint64) bool { return v >= 1 },
		"container_threads":                      func(v uint64) bool { return v >= 1 },
		"container_file_descriptors":             func(v uint64) bool { return v >= 3 },
		"container_network_receive_bytes_total":  func(v uint64) bool { return v > 0 },
		"container_network_transmit_bytes_total": func(v uint64) bool { return v > 0 },
		"container_start_time_seconds":           func(v uint64) bool { return v > 0 },
		"container_fs_limit_bytes":               func(v uint64) bool { return v > 0 },
	} {
		v, ok := values[name]
		if !ok {
			t.Errorf("metric %s missing", name)
		} else if !want(v) {
			t.Errorf("metric %s = %d, out of range", name, v)
		}
	}
}
