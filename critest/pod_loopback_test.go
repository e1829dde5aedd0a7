package critest

import (
	"strconv"
	"strings"
	"testing"
)

// TestPodLoopbackUp: a pod with a network namespace of its own has lo up
// (0x1, IFF_UP, in its flags), so that its containers reach each other and
// themselves on 127.0.0.1.
func TestPodLoopbackUp(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "loopback", nil)
	resp := execSync(t, env, id, 10, "cat", "/sys/class/net/lo/flags")
	out := strings.TrimSpace(string(resp.GetStdout()))
	flags, err := strconv.ParseUint(strings.TrimPrefix(out, "0x"), 16, 32)
	if resp.GetExitCode() != 0 || err != nil {
		t.Fatalf("read lo flags: exit %d %q %q (%v)", resp.GetExitCode(), out, resp.GetStderr(), err)
	}
	if flags&0x1 == 0 {
		t.Errorf("lo flags in the pod = %s: not up", out)
	}
	// And it carries traffic: a listener on 127.0.0.1 answers.
	resp = execSync(t, env, id, 10, "sh", "-c", "nc -l -p 4321 -e echo pong & sleep 0.3; nc 127.0.0.1 4321 </dev/null")
	if got := strings.TrimSpace(string(resp.GetStdout())); got != "pong" {
		t.Errorf("connect to 127.0.0.1 in the pod: exit %d, stdout %q, stderr %q; want pong", resp.GetExitCode(), got, resp.GetStderr())
	}
}
