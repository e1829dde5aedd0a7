package podinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMaps(t *testing.T) {
	const maps = `00400000-00401000 r--p 00000000 fe:00 1 /bin/x
00401000-00556000 r-xp 00001000 fe:00 1 /bin/x
00556000-00560000 rw-p 00156000 fe:00 1 /bin/x
c000000000-c000400000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 ---p 00000000 00:00 0
7ffd10000000-7ffd10001000 r--p 00000000 00:00 0 [vvar]
7ffd10001000-7ffd10002000 r-xp 00000000 00:00 0 [vdso]
7ffe00000000-7ffe00021000 rw-p 00000000 00:00 0 [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
`
	var keep [pid1MaxKeep]span
	n, top, err := parseMaps([]byte(maps), &keep)
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x400000, 0x401000}, {0x401000, 0x556000}, {0x7ffd10000000, 0x7ffd10001000}, {0x7ffd10001000, 0x7ffd10002000}}
	if fmt.Sprint(keep[:n]) != fmt.Sprint(want) {
		t.Errorf("keep %x, want %x", keep[:n], want)
	}
	if top != 0x7ffe00021000 {
		t.Errorf("top %#x, want %#x (the highest mapping but [vsyscall])", top, 0x7ffe00021000)
	}
	for _, bad := range []string{"nonsense r--p\n", "2000-1000 r--p 0 0 0\n", "1000-2000 r--p 0 0 0\n0-1000 r--p 0 0 0\n", "1000-2000\n"} {
		if _, _, err := parseMaps([]byte(bad), &keep); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestPid1HoldsNothing forks the pod's PID 1 and checks, from the node,
// everything it must not hold once it has reported ready: capabilities,
// descriptors, the node's root and mounts, the pod init's memory. It then
// checks that it reaps an orphan and dies with the thread that forked it.
func TestPid1HoldsNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (pid and mount namespaces)")
	}
	dir := t.TempDir()
	pin := filepath.Join(dir, "pidns")
	type started struct {
		p   *pid1
		err error
	}
	ch := make(chan started, 1)
	stop := make(chan struct{})
	go func() {
		runtime.LockOSThread() // ends with the goroutine: pid1 with it
		p, err := startPid1(dir, pin)
		ch <- started{p, err}
		<-stop
	}()
	s := <-ch
	if s.err != nil {
		close(stop)
		t.Fatal(s.err)
	}
	p := s.p
	t.Cleanup(func() {
		close(stop)
		pid := p.pid
		p.close()
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		_ = unix.Unmount(pin, unix.MNT_DETACH)
	})
	proc := "/proc/" + strconv.Itoa(p.pid)

	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
		"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Name:\t" + pid1Name} {
		if !strings.Contains(string(status), want+"\n") {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if f := nsPidsOf(string(status)); len(f) != 2 || f[1] != "1" {
		t.Errorf("NSpid %q, want PID 1 of a pid namespace below ours", f)
	}
	if fds, err := os.ReadDir(proc + "/fd"); err != nil || len(fds) != 0 {
		t.Errorf("descriptors %v (%v), want none", fds, err)
	}
	if root, err := os.ReadDir(proc + "/root/"); err != nil || len(root) != 0 {
		t.Errorf("root holds %v (%v), want an empty directory", root, err)
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err != nil || cwd != "/" {
		t.Errorf("cwd %q (%v), want its root", cwd, err)
	}
	mounts, err := os.ReadFile(proc + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(mounts)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], " / / ro,") || !strings.Contains(lines[0], " - tmpfs ") {
		t.Errorf("mountinfo:\n%s\nwant one read-only tmpfs at /", mounts)
	}
	if pid1UnmapsMemory {
		if b, err := os.ReadFile(proc + "/cmdline"); err != nil || len(b) != 0 {
			t.Errorf("cmdline %q (%v), want none (the pod init's memory is unmapped)", b, err)
		}
		rollup, err := os.ReadFile(proc + "/smaps_rollup")
		if err != nil {
			t.Fatal(err)
		}
		// A few stack pages of its own; whatever else it maps is the
		// binary's read-only text and data, shared with the pod init.
		if kb := smapsField(string(rollup), "Private_Dirty:"); kb < 0 || kb > 64 {
			t.Errorf("private dirty memory %d kB, want a few pages:\n%s", kb, rollup)
		}
	} else {
		t.Log("built with cgo: pid1 keeps its memory, not checked (CGO_ENABLED=0 go test checks it)")
	}
	if same, err := sameFile(pin, proc+"/ns/pid"); err != nil || !same {
		t.Errorf("pinned namespace %s is not pid1's (%v)", pin, err)
	}
	if err := unix.Kill(p.pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// An orphan in its namespace is reaped: a shell forked into it that
	// leaves a child behind.
	orphan := orphanIn(t, p.ns)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(orphan) + "/stat")
		if err != nil {
			break // gone: reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped: %s", orphan, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// SIGTERM from the node was ignored (default action, namespace init).
	if _, err := os.Stat(proc); err != nil {
		t.Fatalf("pid1 did not survive SIGTERM: %v", err)
	}
}

// TestPid1DiesWithPodInit: when the pod init is killed, its PID 1, and so
// the pod's pid namespace, dies too.
func TestPid1DiesWithPodInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (pid and mount namespaces)")
	}
	dir := t.TempDir()
	pin := filepath.Join(dir, "pidns")
	t.Cleanup(func() { _ = unix.Unmount(pin, unix.MNT_DETACH) })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], podInitArg, dir, pin)
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	if n, _ := r.Read(b); strings.TrimSpace(string(b[:n])) != "ok" {
		t.Fatalf("pod init reported %q", b[:n])
	}
	// Children are listed by the thread that forked them.
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
	var pids []string
	for _, l := range lists {
		kids, _ := os.ReadFile(l)
		pids = append(pids, strings.Fields(string(kids))...)
	}
	if len(pids) != 1 {
		t.Fatalf("pod init children %q, want its PID 1 only", pids)
	}
	pid1Stat := "/proc/" + pids[0] + "/stat"
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile(pid1Stat)
		// Gone, or a zombie of whoever adopted it.
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid1 %s alive after its pod init died: %s", pids[0], st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// orphanIn starts, in pid namespace ns, a shell that starts a sleeper and
// exits, and returns the sleeper's pid (in our namespace) once it is an
// orphan.
func orphanIn(t *testing.T, ns *os.File) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // retired with the goroutine
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID); err != nil {
			done <- err
			return
		}
		cmd := exec.Command("sh", "-c", "sleep 0.5 & echo $!")
		cmd.Stdout = w
		done <- cmd.Run()
	}()
	err = <-done
	w.Close()
	if err != nil {
		t.Fatalf("start an orphan: %v", err)
	}
	b := make([]byte, 32)
	n, _ := r.Read(b)
	nsPid := strings.TrimSpace(string(b[:n]))
	// Find it among the processes of the namespace by its NSpid.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		st, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		if f := nsPidsOf(string(st)); len(f) == 2 && f[1] == nsPid && strings.Contains(string(st), "Name:\tsleep\n") {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	t.Fatalf("orphan %s not found", nsPid)
	return 0
}

func nsPidsOf(status string) []string {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

func smapsField(rollup, name string) int {
	for _, line := range strings.Split(rollup, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return -1
}

// TestPodInitEndsWithPid1: a pod whose PID 1 is killed from the node has
// lost its pid namespace and every process in it: the pod init shuts down
// and exits with an error saying so.
func TestPodInitEndsWithPid1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (pid and mount namespaces)")
	}
	dir := t.TempDir()
	pin := filepath.Join(dir, "pidns")
	t.Cleanup(func() { _ = unix.Unmount(pin, unix.MNT_DETACH) })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], podInitArg, dir, pin)
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	if n, _ := r.Read(b); strings.TrimSpace(string(b[:n])) != "ok" {
		t.Fatalf("pod init reported %q", b[:n])
	}
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
	var pids []string
	for _, l := range lists {
		kids, _ := os.ReadFile(l)
		pids = append(pids, strings.Fields(string(kids))...)
	}
	if len(pids) != 1 {
		t.Fatalf("pod init children %q, want its PID 1 only", pids)
	}
	pid, _ := strconv.Atoi(pids[0])
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err == nil || !strings.Contains(stderr.String(), "PID 1") {
			t.Errorf("pod init: %v, stderr %q; want a failed exit saying its PID 1 ended", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pod init runs on after its PID 1 was killed")
	}
	if _, err := os.Stat(filepath.Join(dir, "ctl.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after the exit: %v", err)
	}
}

// sameFile tells whether a and b are one file.
func sameFile(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}
