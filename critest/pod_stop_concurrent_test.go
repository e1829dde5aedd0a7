package critest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// recordingIPAM is an IPAM plugin that notes every DEL in dir/log (and
// "overlap" when a DEL begins while another one runs), holds each DEL for
// a moment so that overlaps cannot slip through, then hands the call to
// host-local.
const recordingIPAM = `#!/bin/sh
if [ "$CNI_COMMAND" = DEL ]; then
	if ! mkdir %[1]q/inflight 2>/dev/null; then echo overlap >>%[1]q/log; fi
	echo del >>%[1]q/log
	sleep 0.3
	rmdir %[1]q/inflight 2>/dev/null
fi
exec %[2]q
`

// TestParallelStopPodSandboxRunsOneCNIDel sends 20 StopPodSandbox calls
// for one pod at once, then stops and removes it concurrently: every call
// succeeds, the pod ends NOTREADY, and its CNI DEL ran exactly once, never
// two at a time (the CNI spec forbids concurrent calls on one attachment).
func TestParallelStopPodSandboxRunsOneCNIDel(t *testing.T) {
	if suite.Options().External() {
		t.Skip("installs a recording CNI plugin in a private daemon; -endpoint given")
	}
	hostLocal := ""
	for _, dir := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(dir, "host-local")); err == nil {
			hostLocal = filepath.Join(dir, "host-local")
			break
		}
	}
	if hostLocal == "" {
		t.Skip("no host-local CNI plugin (containernetworking-plugins)")
	}
	binDir := t.TempDir()
	records := t.TempDir()
	plugin := fmt.Sprintf(recordingIPAM, records, hostLocal)
	if err := os.WriteFile(filepath.Join(binDir, "recording-ipam"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		c.CNI.BinDirs = []string{binDir, "/usr/lib/cni", "/opt/cni/bin"}
		conf, err := json.Marshal(map[string]any{
			"cniVersion": "1.0.0",
			"name":       c.CNI.DefaultNetworkName,
			"plugins": []any{map[string]any{
				"type": "bridge", "bridge": c.CNI.DefaultBridge, "isGateway": true,
				"ipam": map[string]any{"type": "recording-ipam", "ranges": [][]map[string]string{{{"subnet": c.CNI.DefaultSubnet}}}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(c.CNI.ConfDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.CNI.ConfDir, "10-recorded.conflist"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	rs := env.RuntimeService()
	id := runPod(t, env, podConfig("parallel-stop", ""))

	call := func(n int, fn func() error) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fn()
			}()
		}
		wg.Wait()
		return errs
	}
	stop := func() error {
		_, err := rs.StopPodSandbox(framework.Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
		return err
	}
	for i, err := range call(20, stop) {
		if err != nil {
			t.Errorf("StopPodSandbox #%d: %v", i, err)
		}
	}
	st, err := rs.PodSandboxStatus(framework.Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.GetStatus().GetState(); got != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod state after the stops: %v, want NOTREADY", got)
	}

	// Stops and removes racing each other all succeed too.
	errs := call(10, func() error {
		if err := stop(); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		_, err := rs.RemovePodSandbox(framework.Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		if err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller #%d: %v", i, err)
		}
	}
	if _, err := rs.PodSandboxStatus(framework.Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); ignoreNotFound(err) != nil || err == nil {
		t.Errorf("PodSandboxStatus after removal: %v, want NotFound", err)
	}

	log, err := os.ReadFile(filepath.Join(records, "log"))
	if err != nil {
		t.Fatalf("the recording plugin saw no DEL: %v", err)
	}
	lines := strings.Fields(string(log))
	if strings.Contains(string(log), "overlap") {
		t.Errorf("CNI DEL ran concurrently for one pod: plugin log %q", lines)
	}
	if n := strings.Count(string(log), "del"); n != 1 {
		t.Errorf("CNI DEL ran %d times for one pod, want 1: plugin log %q", n, lines)
	}
}
