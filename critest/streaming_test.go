package critest

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a poller.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// streamExec runs req through the streaming server and returns its output.
func streamExec(t *testing.T, env *framework.Env, req *runtimeapi.ExecRequest, opts framework.StreamOptions) (stdout, stderr string, err error) {
	t.Helper()
	resp, err := env.RuntimeService().Exec(framework.Context(t), req)
	if err != nil {
		t.Fatalf("Exec %q: %v", req.GetCmd(), err)
	}
	var out, errOut lockedBuffer
	if req.GetStdout() {
		opts.Stdout = &out
	}
	if req.GetStderr() {
		opts.Stderr = &errOut
	}
	err = framework.Stream(framework.Context(t), resp.GetUrl(), opts)
	return out.String(), errOut.String(), err
}

// TestStreamingExec checks exec through the streaming server: output
// streams apart and the exit code, stdin to EOF, and a terminal with its
// size.
func TestStreamingExec(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "streamexec", nil)

	out, errOut, err := streamExec(t, env, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true}, framework.StreamOptions{})
	var exit framework.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Errorf("exec exiting 3: error %v, want exit code 3", err)
	}
	if out != "out\n" || errOut != "err\n" {
		t.Errorf("exec output %q / %q, want %q / %q", out, errOut, "out\n", "err\n")
	}

	out, _, err = streamExec(t, env, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "tr a-z A-Z; echo done"}, Stdin: true, Stdout: true}, framework.StreamOptions{Stdin: strings.NewReader("hello\nworld\n")})
	if err != nil || out != "HELLO\nWORLD\ndone\n" {
		t.Errorf("exec with stdin: %q, %v; want %q", out, err, "HELLO\nWORLD\ndone\n")
	}

	// A terminal: the command sees one of its container's devpts, with the
	// size the client sent.
	sizes := make(chan framework.TerminalSize, 1)
	sizes <- framework.TerminalSize{Width: 123, Height: 45}
	defer close(sizes)
	inR, inW := io.Pipe()
	go func() {
		time.Sleep(500 * time.Millisecond) // let the size arrive first
		_, _ = io.WriteString(inW, "go\n")
	}()
	defer inW.Close()
	out, _, err = streamExec(t, env, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "read x; test -t 0 && echo is-a-tty; tty; stty size"}, Stdin: true, Stdout: true, Tty: true},
		framework.StreamOptions{Stdin: inR, Tty: true, Resize: sizes})
	if err != nil || !strings.Contains(out, "is-a-tty") || !strings.Contains(out, "45 123") || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec with a terminal: %q, %v; want is-a-tty, a /dev/pts name and size 45 123", out, err)
	}

	// Bad requests.
	rs := env.RuntimeService()
	if _, err := rs.Exec(framework.Context(t), &runtimeapi.ExecRequest{ContainerId: id, Stdout: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Exec without a command: %v, want InvalidArgument", err)
	}
	if _, err := rs.Exec(framework.Context(t), &runtimeapi.ExecRequest{ContainerId: "no-such-container", Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.NotFound {
		t.Errorf("Exec in an unknown container: %v, want NotFound", err)
	}
}

// attach attaches to container id with stdin from in and returns the
// stdout it saw.
func attach(t *testing.T, env *framework.Env, id string, in io.Reader) (string, error) {
	t.Helper()
	resp, err := env.RuntimeService().Attach(framework.Context(t), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	var out, errOut lockedBuffer
	err = framework.Stream(framework.Context(t), resp.GetUrl(), framework.StreamOptions{Stdin: in, Stdout: &out, Stderr: &errOut})
	return out.String(), err
}

// TestAttachStdinOnce checks attach to a shell created with stdin and
// stdin_once: what the client sends runs, and the end of the client's
// input is the end of the container's.
func TestAttachStdinOnce(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "attachonce", func(c *runtimeapi.ContainerConfig) {
		c.Command = []string{"sh"}
		c.Stdin, c.StdinOnce = true, true
	})
	out, err := attach(t, env, id, strings.NewReader("echo hello; echo to-stderr >&2\n"))
	if err != nil || out != "hello\n" {
		t.Errorf("attach: stdout %q, %v; want %q", out, err, "hello\n")
	}
	st := waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 0 {
		t.Errorf("shell exited %d after its stdin closed, want 0", st.GetExitCode())
	}
}

// TestAttachKeepsStdin checks that without stdin_once a client's EOF only
// detaches it: the container keeps its stdin for the next attach, also
// after a cubbyd restart.
func TestAttachKeepsStdin(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "attachkeep", func(c *runtimeapi.ContainerConfig) {
		c.Command = []string{"sh", "-c", "while read line; do echo got-$line; done; echo stdin-closed"}
		c.Stdin = true
	})
	inR, inW := io.Pipe()
	go func() {
		_, _ = io.WriteString(inW, "one\n")
		time.Sleep(time.Second) // the output arrives before the detach
		inW.Close()
	}()
	out, err := attach(t, env, id, inR)
	if err != nil || out != "got-one\n" {
		t.Errorf("first attach: %q, %v; want %q", out, err, "got-one\n")
	}
	env.Restart(t, 0)
	inR, inW = io.Pipe()
	go func() {
		_, _ = io.WriteString(inW, "two\n")
		time.Sleep(time.Second)
		inW.Close()
	}()
	out, err = attach(t, env, id, inR)
	if err != nil || out != "got-two\n" {
		t.Errorf("attach after a restart: %q, %v; want %q", out, err, "got-two\n")
	}
	if st, _ := containerStatus(t, env, id, false); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container is %s after two detaches, want running", st.GetState())
	}
}

// TestExecAfterRestart checks that exec works on a container started by a
// cubbyd that has since been killed.
func TestExecAfterRestart(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "execrestart", nil)
	env.Restart(t, 0)
	resp := execSync(t, env, id, 10, "sh", "-c", "echo after-restart; cat /proc/1/cmdline")
	if !strings.HasPrefix(string(resp.GetStdout()), "after-restart\nsleep") {
		t.Errorf("exec after a restart: %q", resp.GetStdout())
	}
	out, _, err := streamExec(t, env, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "streamed"}, Stdout: true}, framework.StreamOptions{})
	if err != nil || out != "streamed\n" {
		t.Errorf("streaming exec after a restart: %q, %v", out, err)
	}
}

// TestPortForward checks port forwarding to busybox httpd listening on the
// pod's loopback only.
func TestPortForward(t *testing.T) {
	env := suite.NewEnv(t)
	podID, id := runSleeper(t, env, "portforward", func(c *runtimeapi.ContainerConfig) {
		c.Command = []string{"sh", "-c", "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"wget", "-q", "-O", "-", "http://127.0.0.1:8080/"}, Timeout: 5})
		if err == nil && resp.GetExitCode() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd does not serve in the pod: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp, err := env.RuntimeService().PortForward(framework.Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	for i := 0; i < 2; i++ { // two connections through one forward URL each
		if i == 1 {
			resp, err = env.RuntimeService().PortForward(framework.Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID})
			if err != nil {
				t.Fatalf("PortForward: %v", err)
			}
		}
		s, err := framework.PortForward(framework.Context(t), resp.GetUrl(), 8080)
		if err != nil {
			t.Fatalf("port-forward: %v", err)
		}
		if _, err := io.WriteString(s, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("port-forward write: %v", err)
		}
		b, _ := io.ReadAll(s)
		s.Close()
		if !strings.Contains(string(b), "200 OK") || !strings.Contains(string(b), "hello-from-httpd") {
			t.Errorf("port-forwarded HTTP answer: %q", b)
		}
	}

	if _, err := env.RuntimeService().PortForward(framework.Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: "no-such-pod"}); status.Code(err) != codes.NotFound {
		t.Errorf("PortForward to an unknown pod: %v, want NotFound", err)
	}
}

// TestAttachTerminal checks attach to a container created with a
// terminal: the terminal is the container's own (/dev/pts/N inside), the
// client's input reaches the container, its output comes back and goes to
// the log.
func TestAttachTerminal(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("attachtty", logDir)
	podID := runPod(t, env, pod)
	ccfg := containerConfig("tty", reg.Ref, "tty.log", "sh", "-c", `tty; read x; echo "got-$x"; sleep 1`)
	ccfg.Stdin, ccfg.Tty = true, true
	id := createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, id)

	out := attachTerminalTyping(t, env, id, "hello\n")
	if !strings.Contains(out, "got-hello") {
		st, _ := containerStatus(t, env, id, false)
		t.Fatalf("attach output %q lacks got-hello; container %s exit %d", out, st.GetState(), st.GetExitCode())
	}
	entries := readLogUntil(t, filepath.Join(logDir, "tty.log"), func(e []framework.LogEntry) bool {
		return strings.Contains(strings.Join(contents(e), "\n"), "got-hello")
	})
	if log := strings.Join(contents(entries), "\n"); !strings.Contains(log, "stdout /dev/pts/") {
		t.Errorf("the container's terminal is not its own /dev/pts: log %q", log)
	}
}

// attachTerminalTyping attaches to tty container id with stdin, types input
// half a second in, and returns what the terminal showed until the
// container's end closed the stream.
func attachTerminalTyping(t *testing.T, env *framework.Env, id, input string) string {
	t.Helper()
	resp, err := env.RuntimeService().Attach(framework.Context(t), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	inR, inW := io.Pipe()
	defer inW.Close()
	go func() {
		time.Sleep(500 * time.Millisecond)
		_, _ = io.WriteString(inW, input)
	}()
	var out lockedBuffer
	sizes := make(chan framework.TerminalSize)
	close(sizes)
	if err := framework.Stream(framework.Context(t), resp.GetUrl(), framework.StreamOptions{Stdin: inR, Stdout: &out, Tty: true, Resize: sizes}); err != nil {
		t.Fatalf("attach: %v", err)
	}
	return out.String()
}
