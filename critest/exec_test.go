package critest

import (
	"fmt"
	"strconv"
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
		c.Linux.SecurityContext.NoNewPrivs = true
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW"}}
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

	// The exec'd process is set up exactly like the container's own
	// (PID 1 of its pid namespace): namespaces, cgroups, credentials,
	// capabilities, no_new_privs and seccomp mode.
	resp = execSync(t, env, id, 10, "sh", "-c", `
for p in self 1; do
  echo "== $p"
  for ns in mnt pid net ipc uts cgroup; do readlink /proc/$p/ns/$ns; done
  cat /proc/$p/cgroup
  grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/$p/status
done`)
	parts := strings.Split(string(resp.GetStdout()), "== ")
	if len(parts) != 3 || !strings.HasPrefix(parts[1], "self\n") || !strings.HasPrefix(parts[2], "1\n") {
		t.Fatalf("unexpected output %q (stderr %q)", resp.GetStdout(), resp.GetStderr())
	}
	if !strings.Contains(parts[1], "NoNewPrivs:\t1") {
		t.Errorf("exec in a no_new_privs container: %q", parts[1])
	}
	if self, one := strings.TrimPrefix(parts[1], "self\n"), strings.TrimPrefix(parts[2], "1\n"); self != one {
		t.Errorf("the exec'd process differs from the container's:\nexec:\n%s\ncontainer:\n%s", self, one)
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

// TestExecSyncConcurrent runs many execs at once in two containers of a
// pod, as kubelet's probes do: every one returns its own output and exit
// code.
func TestExecSyncConcurrent(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig("execconc", t.TempDir())
	podID := runPod(t, env, pod)
	var ids []string
	for _, name := range []string{"a", "b"} {
		id := createContainer(t, env, podID, pod, containerConfig(name, reg.Ref, "", "sleep", "4242"))
		startContainer(t, env, id)
		ids = append(ids, id)
	}
	const n = 40
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			id := ids[i%len(ids)]
			resp, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{
				ContainerId: id,
				Cmd:         []string{"sh", "-c", "echo out-$0; echo err-$0 >&2; exit $(($0 % 7))", strconv.Itoa(i)},
				Timeout:     30,
			})
			switch {
			case err != nil:
				errs <- fmt.Errorf("exec %d: %w", i, err)
			case string(resp.GetStdout()) != fmt.Sprintf("out-%d\n", i) || string(resp.GetStderr()) != fmt.Sprintf("err-%d\n", i) || resp.GetExitCode() != int32(i%7):
				errs <- fmt.Errorf("exec %d: stdout %q stderr %q exit %d", i, resp.GetStdout(), resp.GetStderr(), resp.GetExitCode())
			default:
				errs <- nil
			}
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
