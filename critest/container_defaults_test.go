package critest

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestExecStormOnOneContainer starts more execs at once in one container
// than cubbyd's containers.max_concurrent_execs allows: the ones over the
// bound fail at once with ResourceExhausted naming the bound, the others
// run, and once they are done the container takes execs again.
func TestExecStormOnOneContainer(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd with max_concurrent_execs set")
	}
	const bound = 3
	env := suite.NewEnv(t, framework.WithContainers(framework.ContainersConfig{MaxConcurrentExecs: bound}))
	_, id := runSleeper(t, env, "execstorm", nil)

	// bound+2 execs that overlap (each sleeps long past the others'
	// arrival): bound of them run, two are refused, at once.
	const over = 2
	type result struct {
		err  error
		took time.Duration
	}
	results := make(chan result, bound+over)
	for range bound + over {
		go func() {
			start := time.Now()
			_, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "5"}, Timeout: 30})
			results <- result{err, time.Since(start)}
		}()
	}
	ran, refused := 0, 0
	for range bound + over {
		r := <-results
		switch {
		case r.err == nil:
			ran++
		case status.Code(r.err) == codes.ResourceExhausted && strings.Contains(r.err.Error(), "max_concurrent_execs"):
			refused++
			if r.took > 2*time.Second {
				t.Errorf("an exec over the bound took %s to be refused, want at once", r.took)
			}
		default:
			t.Errorf("exec: %v, want success or ResourceExhausted naming max_concurrent_execs", r.err)
		}
	}
	if ran != bound || refused != over {
		t.Errorf("%d execs ran and %d were refused, want %d and %d", ran, refused, bound, over)
	}
	execSync(t, env, id, 10, "true") // the slots came back
}

// TestContainerForkBombsWithoutPidsLimit is a container that sets no pids
// limit (CRI has no field for one) on a cubbyd configured with
// containers.pids_limit: its pids cgroup is bounded.
func TestContainerForkBombsWithoutPidsLimit(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd with pids_limit set")
	}
	env := suite.NewEnv(t, framework.WithContainers(framework.ContainersConfig{PidsLimit: 64}))
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("pidslimit", logDir)
	podID := runPod(t, env, pod)
	cfg := containerConfig("pidslimit", reg.Ref, "")
	_, lines := runScript(t, env, podID, pod, logDir, cfg,
		`echo "pids.max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
for i in $(seq 80); do sleep 5 & done 2>/dev/null; echo "forked=$(jobs -p | wc -l)"`)
	if got, _ := lineWithPrefix(lines, "pids.max="); got != "64" {
		t.Errorf("pids.max %q, want 64 (output %q)", got, lines)
	}
	if got, _ := lineWithPrefix(lines, "forked="); got == "80" {
		t.Errorf("the container forked 80 processes under a pids limit of 64 (output %q)", lines)
	}
}

// TestUnsetSeccompProfileIsRuntimeDefault is a container that asks for no
// seccomp profile at all, on a cubbyd configured with
// containers.unset_seccomp_profile = "runtime/default": it runs under the
// default profile, while one that asks for Unconfined still gets none.
func TestUnsetSeccompProfileIsRuntimeDefault(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd with unset_seccomp_profile set")
	}
	env := suite.NewEnv(t, framework.WithContainers(framework.ContainersConfig{UnsetSeccompProfile: "runtime/default"}))
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("unsetseccomp", logDir)
	podID := runPod(t, env, pod)
	for _, tc := range []struct {
		name    string
		profile *runtimeapi.SecurityProfile
		mode    string
	}{
		{name: "unset", mode: "2"},
		{name: "unconfined", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, mode: "0"},
	} {
		cfg := containerConfig("seccomp-"+tc.name, reg.Ref, "")
		cfg.Linux.SecurityContext.Seccomp = tc.profile
		_, lines := runScript(t, env, podID, pod, logDir, cfg, seccompScript)
		if got, _ := lineWithPrefix(lines, "Seccomp:"); got != tc.mode {
			t.Errorf("%s: Seccomp: %q, want %q (output %q)", tc.name, got, tc.mode, lines)
		}
	}
}
