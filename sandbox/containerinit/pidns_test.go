package containerinit

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func TestInPidNamespace(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a pid namespace")
	}
	target := exec.Command("sleep", "60")
	target.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Process.Kill(); _ = target.Wait() })
	nsFile := fmt.Sprintf("/proc/%d/ns/pid", target.Process.Pid)
	want, err := os.Readlink(nsFile)
	if err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := inPidNamespace(nsFile, nil, func() (*os.Process, error) {
		return os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Kill(); _, _ = proc.Wait() })
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", proc.Pid)); err != nil || got != want {
		t.Errorf("child pid namespace %q (%v), want the target's %q", got, err, want)
	}
	// Without a path, into the pod's namespace, given open.
	pod, err := os.Open(nsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer pod.Close()
	inPod, err := inPidNamespace("", pod, func() (*os.Process, error) {
		return os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inPod.Kill(); _, _ = inPod.Wait() })
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", inPod.Pid)); err != nil || got != want {
		t.Errorf("child pid namespace %q (%v), want the pod's %q", got, err, want)
	}
	// The calling thread, and every other, still forks into our own.
	self, _ := os.Readlink("/proc/self/ns/pid")
	if got, _ := os.Readlink("/proc/thread-self/ns/pid_for_children"); got != self {
		t.Errorf("this thread's pid_for_children is %q, want %q", got, self)
	}
	if _, err := inPidNamespace("/nonexistent/pidns", nil, func() (*os.Process, error) {
		t.Error("start called without a namespace to join")
		return nil, nil
	}); err == nil {
		t.Error("joining a missing namespace file succeeded")
	}
}
