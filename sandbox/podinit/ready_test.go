package podinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// podInitArg makes the test binary run a pod init (Run) instead of the
// tests, with the pod directory as argv[2], the ready report on fd 3 and,
// if there is an argv[3], a pid namespace of the pod's own pinned there.
const podInitArg = "podinit-test-run"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == podInitArg {
		runtime.LockOSThread() // as cubby-pod's main goroutine (see forkPid1)
		cfg := Config{ID: "test", Dir: os.Args[2], ReadyFD: 3}
		if len(os.Args) > 3 {
			cfg.PidNamespace = os.Args[3]
		}
		if err := Run(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestUnwantedPodInitExits: a pod init whose starter stopped waiting for its
// ready report (a given-up start) exits instead of running on unknown,
// and leaves no control socket.
func TestUnwantedPodInitExits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (child subreaper)")
	}
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // nobody will read the report
	cmd := exec.Command(os.Args[0], podInitArg, dir)
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(stderr.String(), "report ready") {
			t.Errorf("pod init: %v, stderr %q; want a failed exit reporting the ready write", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("pod init with nobody waiting for it still runs")
	}
	if _, err := os.Stat(filepath.Join(dir, "ctl.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after the exit: %v", err)
	}
}
