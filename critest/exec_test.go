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

// execSync runs cmd in container id and fails the test on a CRI error.
func execSync(t *testing.T, env *framework.Env, id string, timeout int64, cmd ...string) *runtimeapi.ExecSyncResponse {
	t.Helper()
	resp, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
	if err != nil {
		t.Fatalf("exec %q in %q: %v", cmd, id, err)
	}
	return resp
}

// runSleeper starts a container that sleeps in a new pod; cfg (optional)
// adjusts its config.
func runSleeper(t *testing.T, env *framework.Env, name string, cfg func(*runtimeapi.ContainerConfig)) (podID, id string) {
	t.Helper()
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig(name, t.TempDir())
	podID = runPod(t, env, pod)
	ccfg := containerConfig(name, reg.Ref, name+".log", "sleep", "4242")
	if cfg != nil {
		cfg(ccfg)
	}
	id = createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, id)
	return podID, id
}

// TestExecSync checks what an exec'd command sees and returns: its output
// streams apart, its exit code, the container's filesystem, processes,
// environment, working directory and hostname.
func TestExecSync(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "execsync", func(c *runtimeapi.ContainerConfig) {
		c.WorkingDir = "/srv/work"
		c.Envs = []*runtimeapi.KeyValue{{Key: "FOO", Value: []byte("bar baz")}}
	})

	resp := execSync(t, env, id, 0, "sh", "-c", "echo out; echo err >&2; echo more; exit 3")
	if got := string(resp.GetStdout()); got != "out\nmore\n" {
		t.Errorf("stdout %q, want %q", got, "out\nmore\n")
	}
	if got := string(resp.GetStderr()); got != "err\n" {
		t.Errorf("stderr %q, want %q", got, "err\n")
	}
	if resp.GetExitCode() != 3 {
		t.Errorf("exit code %d, want 3", resp.GetExitCode())
	}

	resp = execSync(t, env, id, 10, "sh", "-c", `echo "FOO=$FOO"; pwd; cat /proc/1/cmdline | tr '\0' ' '; echo; id -u; test -e /critest-marker || echo no-host-root`)
	want := "FOO=bar baz\n/srv/work\nsleep 4242 \n0\nno-host-root\n"
	if got := string(resp.GetStdout()); got != want || resp.GetExitCode() != 0 {
		t.Errorf("exec sees %q (exit %d), want %q", got, resp.GetExitCode(), want)
	}

	// Large output comes back whole.
	resp = execSync(t, env, id, 0, "sh", "-c", "head -c 3000000 /dev/zero")
	if n := len(resp.GetStdout()); n != 3000000 {
		t.Errorf("got %d bytes of output, want 3000000", n)
	}
}

// TestExecSyncErrors checks the failures: a missing command, an empty
// command, an unknown container and a container that is not running.
func TestExecSyncErrors(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "execerr", nil)
	rs := env.RuntimeService()
	ctx := framework.Context(t)

	if _, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"no-such-command"}}); err == nil {
		t.Errorf("exec of a missing command succeeded")
	} else if !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("exec of a missing command: error %q does not name the command", err)
	}
	if _, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("exec without a command: %v, want InvalidArgument", err)
	}
	if _, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "no-such-container", Cmd: []string{"true"}}); status.Code(err) != codes.NotFound {
		t.Errorf("exec in an unknown container: %v, want NotFound", err)
	}
	// The container is still fine.
	if resp := execSync(t, env, id, 0, "true"); resp.GetExitCode() != 0 {
		t.Errorf("exec after failures: exit %d", resp.GetExitCode())
	}

	if _, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}}); err == nil {
		t.Errorf("exec in a stopped container succeeded")
	}
}

// TestExecSyncTimeout checks that an exec that outlives its timeout fails
// with DeadlineExceeded and that everything it started is killed.
func TestExecSyncTimeout(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "exectimeout", nil)
	start := time.Now()
	_, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{
		ContainerId: id,
		Cmd:         []string{"sh", "-c", "sleep 777 & (sleep 778 &) ; setsid sleep 779 & sleep 780"},
		Timeout:     1,
	})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("exec past its timeout: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("timed-out exec took %s to return", d)
	}
	// Everything the exec started is gone, except what escaped the tree
	// by being re-parented (sleep 778, whose parent subshell exited).
	resp := execSync(t, env, id, 10, "ps", "-o", "args")
	for _, gone := range []string{"sleep 777", "sleep 779", "sleep 780", "sh -c sleep"} {
		if strings.Contains(string(resp.GetStdout()), gone) {
			t.Errorf("%q still runs after the exec timed out:\n%s", gone, resp.GetStdout())
		}
	}
}

// TestExecNonRootUser checks that an exec runs as the container's user,
// with its groups.
func TestExecNonRootUser(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "execuser", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
		c.Linux.SecurityContext.SupplementalGroups = []int64{2000}
	})
	resp := execSync(t, env, id, 10, "sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status")
	lines := strings.Split(strings.TrimSpace(string(resp.GetStdout())), "\n")
	if len(lines) != 4 || lines[0] != "1000" || lines[1] != "1000" || !strings.Contains(lines[2], "2000") {
		t.Fatalf("exec as user 1000: got %q", resp.GetStdout())
	}
	if !strings.HasSuffix(lines[3], "0000000000000000") {
		t.Errorf("exec as a non-root user has effective capabilities: %q", lines[3])
	}
}
