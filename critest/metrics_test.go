package critest

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// scrape fetches http://addr/path and returns the status and body.
func scrape(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s%s: %v", addr, path, err)
	}
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the sample series (`name{labels}` as the
// text format writes it, labels sorted by name) in a scrape, 0 when absent.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// TestMetricsMoveWithAPodLifecycle scrapes a private cubbyd's /metrics
// before and after a pod with a container and an exec, and checks that the
// CRI call counts, error counts, latency histograms, pod and container
// gauges and exec counts moved; /healthz answers 200.
func TestMetricsMoveWithAPodLifecycle(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd with [metrics] address; the runtime is external")
	}
	env := suite.NewEnv(t, framework.WithMetrics("127.0.0.1:0"))
	addr, err := env.Daemon.MetricsAddress()
	if err != nil || addr == "" {
		t.Fatalf("no metrics address in the cubbyd log (%v)", err)
	}
	if code, body := scrape(t, addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	_, before := scrape(t, addr, "/metrics")

	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("metrics", logDir)
	podID := runPod(t, env, pod)
	cid := createContainer(t, env, podID, pod, containerConfig("metrics", reg.Ref, "", "sleep", "3600"))
	startContainer(t, env, cid)
	ctx := framework.Context(t)
	if _, err := env.RuntimeService().ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"true"}, Timeout: 10}); err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if _, err := env.RuntimeService().PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "no-such-pod"}); err == nil {
		t.Fatal("PodSandboxStatus of no pod succeeded")
	}
	_, during := scrape(t, addr, "/metrics")

	for _, tc := range []struct {
		series string
		delta  float64
	}{
		{`cubby_cri_requests_total{method="RunPodSandbox"}`, 1},
		{`cubby_cri_requests_total{method="CreateContainer"}`, 1},
		{`cubby_cri_requests_total{method="StartContainer"}`, 1},
		{`cubby_cri_request_duration_seconds_count{method="RunPodSandbox"}`, 1},
		{`cubby_cri_request_errors_total{code="NotFound",method="PodSandboxStatus"}`, 1},
		{`cubby_exec_sync_total{result="exit_zero"}`, 1},
		{`cubby_exec_sync_duration_seconds_count`, 1},
		{`cubby_pods{state="ready"}`, 1},
		{`cubby_containers{state="running"}`, 1},
		{`cubby_image_pulls_total{result="success"}`, 1},
		{`cubby_image_pull_duration_seconds_count`, 1},
		{`cubby_pod_start_step_duration_seconds_count{step="cgroups"}`, 1},
		{`cubby_pod_start_step_duration_seconds_count{step="pod_init"}`, 1},
		{`cubby_pod_start_step_duration_seconds_count{step="network"}`, 1},
		{`cubby_pod_start_step_duration_seconds_count{step="record"}`, 1},
	} {
		if got := metricValue(t, during, tc.series) - metricValue(t, before, tc.series); got != tc.delta {
			t.Errorf("%s moved by %v, want %v", tc.series, got, tc.delta)
		}
	}
	if got := metricValue(t, during, "cubby_image_pull_bytes_total") - metricValue(t, before, "cubby_image_pull_bytes_total"); got <= 0 {
		t.Errorf("cubby_image_pull_bytes_total moved by %v after a pull", got)
	}
	for _, series := range []string{"cubby_image_pulls_in_flight", "cubby_image_pull_bytes_in_flight"} {
		if got := metricValue(t, during, series); got != 0 {
			t.Errorf("%s = %v with no pull running", series, got)
		}
	}
	for _, series := range []string{"go_goroutines", "process_open_fds"} {
		if metricValue(t, during, series) <= 0 {
			t.Errorf("no Go runtime metric %s", series)
		}
	}

	removePod(t, env, podID)
	_, after := scrape(t, addr, "/metrics")
	if got := metricValue(t, after, `cubby_pods{state="ready"}`); got != metricValue(t, before, `cubby_pods{state="ready"}`) {
		t.Errorf("ready pods after removal %v, want as before", got)
	}
	for _, step := range []string{"pod_init", "network", "namespaces_cgroup", "record"} {
		series := `cubby_pod_stop_step_duration_seconds_count{step="` + step + `"}`
		if got := metricValue(t, after, series) - metricValue(t, during, series); got < 1 {
			t.Errorf("%s moved by %v over a pod removal, want at least 1", series, got)
		}
	}
	if got := metricValue(t, after, `cubby_cri_requests_total{method="RemovePodSandbox"}`) - metricValue(t, before, `cubby_cri_requests_total{method="RemovePodSandbox"}`); got < 1 {
		t.Errorf("RemovePodSandbox not counted")
	}
}

// TestMetricsBadAddressFailsStartUp starts cubbyd with a metrics address it
// cannot use and checks that it exits at once naming the setting.
// TestMetricsPodInitKilled kills a ready pod's init: the daemon counts an
// unexpected pod init exit.
func TestMetricsPodInitKilled(t *testing.T) {
	if suite.Options().External() {
		t.Skip("kills the runtime's pod init; -endpoint given")
	}
	env := suite.NewEnv(t, framework.WithMetrics("127.0.0.1:0"))
	addr, err := env.Daemon.MetricsAddress()
	if err != nil || addr == "" {
		t.Fatalf("no metrics address in the cubbyd log (%v)", err)
	}
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	p := startCrashPod(t, env, reg.Ref, "initexit", runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, "exec sleep 3600")
	const series = `cubby_pod_init_exits_total{reason="unexpected"}`
	if _, body := scrape(t, addr, "/metrics"); metricValue(t, body, series) != 0 {
		t.Fatalf("%s counts before any pod init died:\n%s", series, body)
	}
	if err := syscall.Kill(p.init.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitPodState(t, env, p.id, runtimeapi.PodSandboxState_SANDBOX_NOTREADY)
	if _, body := scrape(t, addr, "/metrics"); metricValue(t, body, series) != 1 {
		t.Errorf("%s = %v after a pod init was killed, want 1\n%s", series, metricValue(t, body, series), body)
	}
}

func TestMetricsBadAddressFailsStartUp(t *testing.T) {
	if suite.Options().External() {
		t.Skip("starts its own cubbyd binary; the runtime is external")
	}
	dir := t.TempDir()
	for addr, want := range map[string]string{
		"127.0.0.1:99999": `metrics.address: "127.0.0.1:99999"`, // refused by validation
		"192.0.2.1:9090":  `metrics.address "192.0.2.1:9090"`,   // TEST-NET-1: no host has it, listen fails
	} {
		cfg := "root = " + strconv.Quote(filepath.Join(dir, "root")) + "\nstate = " + strconv.Quote(filepath.Join(dir, "state")) +
			"\nlisten = " + strconv.Quote(filepath.Join(dir, "cubby.sock")) + "\n[metrics]\naddress = " + strconv.Quote(addr) + "\n"
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(suite.Cubbyd(t), "--config", path)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("cubbyd with metrics address %q still running after 30s", addr)
		}
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("cubbyd with metrics address %q: %v\n%s\nwant an error with %s", addr, err, out, want)
		}
		for _, made := range []string{"root", "state", "cubby.sock"} {
			if _, err := os.Stat(filepath.Join(dir, made)); err == nil {
				t.Errorf("cubbyd made %s before failing", made)
			}
		}
	}
}
