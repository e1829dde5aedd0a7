package critest

import (
	"bytes"
	"context"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// execResponseLimit is the most an ExecSync response may carry: kubelet's
// (and this suite's) gRPC client takes messages of at most 16 MiB.
const execResponseLimit = 16 << 20

// floodScript writes 100 MiB of zeros: 50 MiB to stdout, then 50 MiB to
// stderr.
const floodScript = `dd if=/dev/zero bs=1M count=50 2>/dev/null; { dd if=/dev/zero bs=1M count=50 2>/dev/null; } >&2`

// TestExecSyncFloodsOutput is a container whose exec'd command (a probe, as
// kubelet runs them) writes 100 MiB to stdout and stderr: the call must
// still succeed, with the output cut so the whole response fits in a gRPC
// message, and the runtime must not keep the memory the floods went
// through (its RSS after ten of them comes back near where it was).
func TestExecSyncFloodsOutput(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "execflood", nil)
	execSync(t, env, id, 10, "true") // warm up: the first exec's own costs

	pid := 0
	if env.Daemon != nil {
		pid = env.Daemon.Pid()
	}
	before := daemonRSS(t, pid)
	peak := before
	for i := range 10 {
		resp, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{
			ContainerId: id, Cmd: []string{"sh", "-c", floodScript}, Timeout: 60,
		})
		peak = max(peak, daemonRSS(t, pid))
		if err != nil {
			t.Errorf("exec %d flooding 100 MiB: %v", i, err)
			continue
		}
		out, errOut := resp.GetStdout(), resp.GetStderr()
		if n := len(out) + len(errOut); n > execResponseLimit || n == 0 {
			t.Fatalf("exec %d: stdout %d + stderr %d bytes, want some and at most %d together", i, len(out), len(errOut), execResponseLimit)
		}
		if len(out) < 8<<20 { // stdout came first: it had the room
			t.Errorf("exec %d: only %d bytes of the 50 MiB of stdout kept", i, len(out))
		}
		if !bytes.Equal(out, make([]byte, len(out))) {
			t.Fatalf("exec %d: stdout is not the command's zeros", i)
		}
	}
	if pid == 0 {
		return
	}
	// The output went through cubbyd: it may hold some of it for a while
	// but must give it back.
	const slack = 16 << 10 // KiB
	var after int64
	ctx, cancel := context.WithTimeout(framework.Context(t), 30*time.Second)
	defer cancel()
	err := framework.Poll(ctx, 500*time.Millisecond, func() (bool, error) {
		after = daemonRSS(t, pid)
		return after <= before+slack, nil
	})
	if err != nil {
		t.Errorf("cubbyd RSS %d KiB after ten 100 MiB execs, was %d KiB before: the memory is not returned (%v)", after, before, err)
	}
	time.Sleep(2 * time.Second)
	t.Logf("cubbyd RSS: before %d KiB, peak %d KiB, after %d KiB, 2s later %d KiB", before, peak, after, daemonRSS(t, pid))
}

// daemonRSS is the resident set of process pid in KiB (0 for pid 0).
func daemonRSS(t *testing.T, pid int) int64 {
	t.Helper()
	if pid == 0 {
		return 0
	}
	f, err := readDaemonFigures(pid)
	if err != nil {
		t.Fatalf("read cubbyd %d: %v", pid, err)
	}
	return f.RSSKiB
}
