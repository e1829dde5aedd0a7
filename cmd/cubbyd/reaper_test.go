package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestStatFields(t *testing.T) {
	for _, tc := range []struct {
		name, line    string
		state         string
		ppid, session int
		ok            bool
	}{
		{"plain", "42 (sleep) Z 7 42 42 0 -1", "Z", 7, 42, true},
		{"comm with spaces and parens", "42 (a b) (c)) S 1 5 9 0", "S", 1, 9, true},
		{"no comm end", "42 (sleep Z 7 42 42", "", 0, 0, false},
		{"short", "42 (sleep) Z 7", "", 0, 0, false},
		{"not a number", "42 (sleep) Z x 42 42", "Z", 0, 42, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, ppid, session, ok := statFields(tc.line)
			if ok != tc.ok || (ok && (state != tc.state || ppid != tc.ppid || session != tc.session)) {
				t.Errorf("statFields(%q) = %q %d %d %v, want %q %d %d %v", tc.line, state, ppid, session, ok, tc.state, tc.ppid, tc.session, tc.ok)
			}
		})
	}
}

func TestFaultHook(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Setenv(faultEnv, "")
	t.Setenv(delayEnv, "")
	if hook, err := faultHook(log); hook != nil || err != nil {
		t.Errorf("without %s or %s: hook set %v, err %v", faultEnv, delayEnv, hook != nil, err)
	}
	t.Setenv(faultEnv, "run-pod-sandbox/network")
	hook, err := faultHook(log)
	if hook == nil || err != nil {
		t.Fatalf("no fault hook with %s set: %v", faultEnv, err)
	}
	hook("run-pod-sandbox/cgroups") // another point: returns

	t.Setenv(faultEnv, "")
	t.Setenv(delayEnv, "create-container/bundle=50ms")
	if hook, err = faultHook(log); hook == nil || err != nil {
		t.Fatalf("no hook with %s set: %v", delayEnv, err)
	}
	start := time.Now()
	hook("create-container/bundle")
	if time.Since(start) < 50*time.Millisecond {
		t.Error("the delay point did not sleep")
	}
	for _, bad := range []string{"create-container/bundle", "=1s", "p=soon", "p=-1s"} {
		t.Setenv(delayEnv, bad)
		if _, err := faultHook(log); err == nil {
			t.Errorf("%s=%q accepted", delayEnv, bad)
		}
	}
}

// zombie starts /bin/true as a child (in its own session if setsid) and
// waits until it has exited, unreaped.
func zombie(t *testing.T, setsid bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if state, _, _, ok := statFields(string(b)); err == nil && ok && state == "Z" {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not exit", cmd.Process.Pid)
		}
	}
}

func TestReapForeignZombiesReapsOnlyOtherSessions(t *testing.T) {
	foreign := zombie(t, true)
	own := zombie(t, false)
	reaped := reapForeignZombies()
	if !slices.Contains(reaped, foreign.Process.Pid) {
		t.Errorf("reaped %v: the exited child in another session (%d) is not among them", reaped, foreign.Process.Pid)
	}
	if slices.Contains(reaped, own.Process.Pid) {
		t.Errorf("reaped %v: the child in cubbyd's own session (%d) was taken from its Wait", reaped, own.Process.Pid)
	}
	if err := own.Wait(); err != nil {
		t.Errorf("Wait of the own-session child: %v", err)
	}
}

// BenchmarkReapForeignZombies is the cost of one SIGCHLD with nothing to
// reap: it follows the number of cubbyd's children, not of the node's
// processes.
func BenchmarkReapForeignZombies(b *testing.B) {
	for b.Loop() {
		reapForeignZombies()
	}
}
