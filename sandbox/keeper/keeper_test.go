package keeper

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is also the keeper and its children: the keeper runs its
// own executable, so argv[1] says which part this process plays.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case Arg:
			Main()
		case "child": // child CODE: exit with CODE once stdin closes
			code, _ := strconv.Atoi(os.Args[2])
			_, _ = os.Stdin.Read(make([]byte, 1))
			os.Exit(code)
		case "orphaner": // start a child that waits on stdin, print its pid, exit
			// The keeper's children run from its sealed copy, which
			// only /proc/self/exe names.
			p, err := os.StartProcess("/proc/self/exe", []string{"test-orphan", "child", "0"}, &os.ProcAttr{Files: []*os.File{os.Stdin, nil, nil}})
			if err != nil {
				os.Exit(1)
			}
			fmt.Println(p.Pid)
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func newTestClient(t *testing.T) *Client {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (child subreaper, pidfds of other sessions)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(t.TempDir(), self)
}

// spawnChild spawns a child that exits with code once the returned pipe
// end is closed.
func spawnChild(t *testing.T, c *Client, code int) (*Child, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Spawn(ctx, Request{Args: []string{"test-child", "child", strconv.Itoa(code)}}, []*os.File{r})
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ch.Kill()
		ch.Close()
		w.Close()
	})
	return ch, w
}

// procStat returns the state and parent of pid.
func procStat(pid int) (state string, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err
}

// waitGone waits until pid has left the process table (reaped, not just
// exited).
func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := procStat(pid)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %d still in the process table (state %s)", what, pid, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reapChild waits for this process's child pid to exit and reaps it.
func reapChild(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d did not exit", what, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSpawnedChildIsKeptAndReaped(t *testing.T) {
	c := newTestClient(t)
	defer c.Close()
	ch, stdin := spawnChild(t, c, 3)
	_, ppid, err := procStat(ch.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if ppid == os.Getpid() || ppid != c.hold.pid {
		t.Fatalf("child's parent is %d, want the keeper %d", ppid, c.hold.pid)
	}
	if sid, _ := unix.Getsid(ch.Pid); sid != ch.Pid {
		t.Errorf("child's session is %d, want its own", sid)
	}
	stdin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !ch.Exited() {
		t.Error("Exited is false after Wait")
	}
	waitGone(t, "exited child", ch.Pid)
}

func TestKeeperOutlivesItsClient(t *testing.T) {
	c := newTestClient(t)
	ch, stdin := spawnChild(t, c, 0)
	keeper := c.hold.pid
	// The client's process "dies": its hold ends without a release.
	c.forget()
	if c.started != nil {
		c.started.Close()
		c.started = nil
	}
	time.Sleep(50 * time.Millisecond)
	if st, _, err := procStat(keeper); err != nil || st == "Z" {
		t.Fatalf("keeper %d after its client hung up: state %q, %v; want it running", keeper, st, err)
	}
	// The next client (a restarted cubbyd) uses the same keeper, which
	// still reaps the first one's child.
	next := NewClient(c.dir, c.binary)
	ch2, _ := spawnChild(t, next, 0)
	if next.hold.pid != keeper {
		t.Errorf("restarted client holds keeper %d, want %d", next.hold.pid, keeper)
	}
	stdin.Close()
	waitGone(t, "child of the first client", ch.Pid)
	_ = ch2.Kill()
	waitGone(t, "child of the second client", ch2.Pid)
	next.Close()
	// The keeper is idle and let go: it exits; its parent (this test)
	// reaps it.
	reapChild(t, "keeper let go", keeper)
	if _, err := os.Stat(SocketPath(c.dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("keeper socket after exit: %v", err)
	}
}

func TestCloseReapsIdleKeeper(t *testing.T) {
	c := newTestClient(t)
	ch, _ := spawnChild(t, c, 0)
	keeper := c.hold.pid
	_ = ch.Kill()
	waitGone(t, "killed child", ch.Pid)
	c.Close()
	waitGone(t, "keeper", keeper)
}

func TestKeeperStaysWhileChildrenRun(t *testing.T) {
	c := newTestClient(t)
	ch, stdin := spawnChild(t, c, 0)
	keeper := c.hold.pid
	c.Close()
	if st, _, err := procStat(keeper); err != nil || st == "Z" {
		t.Fatalf("keeper %d let go with a child running: state %q, %v; want it running", keeper, st, err)
	}
	stdin.Close()
	waitGone(t, "child", ch.Pid)
	// Its last child gone and let go, it exits; the test is its parent.
	reapChild(t, "keeper after its last child", keeper)
}

func TestDeadKeeperIsReplaced(t *testing.T) {
	c := newTestClient(t)
	defer c.Close()
	ch, _ := spawnChild(t, c, 0)
	first := c.hold.pid
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.hold.closed
	ch2, _ := spawnChild(t, c, 0)
	if c.hold.pid == first {
		t.Fatal("spawned through a dead keeper")
	}
	if _, ppid, _ := procStat(ch2.Pid); ppid != c.hold.pid {
		t.Errorf("child's parent %d, want the new keeper %d", ppid, c.hold.pid)
	}
	// The first keeper's child went to this test, the nearest subreaper
	// or PID 1; the kill in its cleanup ends it.
	_ = ch.Kill()
}

func TestSpawnRejectsBadRequests(t *testing.T) {
	c := newTestClient(t)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, req := range map[string]Request{
		"no argv":             {},
		"not a cgroup file":   {Args: []string{"x", "child", "0"}, CgroupProcsFiles: []string{"/etc/passwd"}},
		"relative cgroup":     {Args: []string{"x", "child", "0"}, CgroupProcsFiles: []string{"cgroup.procs"}},
		"missing cgroup file": {Args: []string{"x", "child", "0"}, CgroupProcsFiles: []string{"/nonexistent/cgroup.procs"}},
	} {
		if ch, err := c.Spawn(ctx, req, nil); err == nil {
			_ = ch.Kill()
			ch.Close()
			t.Errorf("%s: spawned pid %d, want an error", name, ch.Pid)
		}
	}
	// The child whose cgroup join failed was killed and reaped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", c.hold.pid))
		n := 0
		for _, k := range kids {
			b, _ := os.ReadFile(k)
			n += len(strings.Fields(string(b)))
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keeper still has %d children after refused spawns", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAdoptedOrphanIsKilled: what a dead child leaves behind (the
// containers of a pod init in the node's pid namespace) comes to the keeper,
// a subreaper, which ends it instead of letting it run on unmonitored.
func TestAdoptedOrphanIsKilled(t *testing.T) {
	c := newTestClient(t)
	defer c.Close()
	stdinR, stdinW, err := os.Pipe() // kept open: the orphan would wait forever
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Spawn(ctx, Request{Args: []string{"test-orphaner", "orphaner"}}, []*os.File{stdinR, outW})
	stdinR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var orphan int
	if _, err := fmt.Fscan(outR, &orphan); err != nil || orphan <= 0 {
		t.Fatalf("read the orphan's pid: %d, %v", orphan, err)
	}
	outR.Close()
	waitGone(t, "exited parent", ch.Pid)
	waitGone(t, "orphan adopted by the keeper", orphan)
}

// TestChildRunsFromSealedCopy: a child's /proc/<pid>/exe is the keeper's
// read-only copy of its binary, not the file the keeper was started from.
func TestChildRunsFromSealedCopy(t *testing.T) {
	c := newTestClient(t)
	ch, stdin := spawnChild(t, c, 0)
	// The child ends and is reaped before the client releases the keeper,
	// which then exits and is reaped by Close; a keeper released while it
	// still has a child would outlive this test.
	defer func() {
		stdin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ch.Wait(ctx); err != nil {
			t.Error(err)
		}
		waitGone(t, "exited child", ch.Pid)
		c.Close()
	}()
	var exe, host unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", ch.Pid), &exe); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(c.binary, &host); err != nil {
		t.Fatal(err)
	}
	if exe.Dev == host.Dev && exe.Ino == host.Ino {
		t.Fatal("the child runs the keeper's binary itself")
	}
	if fd, err := unix.Open(fmt.Sprintf("/proc/%d/exe", ch.Pid), unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		t.Error("the child's executable opens for writing")
	}
}
