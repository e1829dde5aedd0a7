package cgroupmgr

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// testCgroup returns a fresh top-level cgroup path and removes it (and
// anything below it, on every hierarchy of b) when the test ends, even if
// Delete is what broke.
func testCgroup(t *testing.T, b backend) string {
	t.Helper()
	var buf [6]byte
	if _, err := rand.Read(buf[:]); err != nil {
		t.Fatal(err)
	}
	path := "/cubbytest-" + hex.EncodeToString(buf[:])
	t.Cleanup(func() {
		for _, d := range b.dirs(path) {
			if pids, _ := pidsIn([]string{d}); len(pids) > 0 {
				_ = killPids(pids)
			}
			if err := removeTree(d, time.Now().Add(5*time.Second)); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return path
}

// startSleep starts a child that lives until killed; the test kills and
// reaps it at the end if nothing else did.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func readTrim(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// procCgroups returns the cgroup path of pid per hierarchy id line
// ("4:memory" -> "/x").
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(readTrim(t, "/proc/"+strconv.Itoa(pid)+"/cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out
}

func TestManagerLifecycle(t *testing.T) {
	requireRoot(t)
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup v%d", m.Version())

	base := testCgroup(t, m.b)
	pod := base + "/pod"
	ctr := pod + "/ctr"
	other := pod + "/other"

	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
	}
	if err := m.Create(ctr, res); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctr, res); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	checkLimits(t, m, ctr)

	// Join by AddProc.
	s1 := startSleep(t)
	if err := m.AddProc(ctr, s1.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for h, p := range procCgroups(t, s1.Process.Pid) {
		if m.Version() == 1 && h != "" && !strings.HasPrefix(h, "name=") && p != ctr {
			t.Errorf("pid %d is in %q on hierarchy %q, want %q", s1.Process.Pid, p, h, ctr)
		}
		if m.Version() == 2 && h == "" && p != ctr {
			t.Errorf("pid %d is in %q, want %q", s1.Process.Pid, p, ctr)
		}
	}

	// Join by writing cgroup.procs, as a lean child would.
	if err := m.Create(other, nil); err != nil {
		t.Fatal(err)
	}
	s2 := startSleep(t)
	files, err := m.ProcsFiles(other)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.b.dirs(other)); len(files) != want {
		t.Errorf("ProcsFiles = %v, want %d files", files, want)
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte(strconv.Itoa(s2.Process.Pid)), 0); err != nil {
			t.Fatalf("join %s: %v", f, err)
		}
	}

	checkPids(t, m, ctr, s1.Process.Pid)
	checkPids(t, m, other, s2.Process.Pid)
	checkPids(t, m, base, s1.Process.Pid, s2.Process.Pid)

	if _, err := m.Stats(ctr); err != nil {
		t.Errorf("Stats: %v", err)
	}

	if err := m.Update(ctr, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](100)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(pidsDir(t, m, ctr), "pids.max")); got != "100" {
		t.Errorf("pids.max = %q, want 100", got)
	}
	if err := m.Update(ctr, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(pidsDir(t, m, ctr), "pids.max")); got != "max" {
		t.Errorf("pids.max = %q, want max", got)
	}

	if err := m.Delete(base); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{s1, s2} {
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("pid %d: wait = %v, want killed by SIGKILL", cmd.Process.Pid, err)
		}
	}
	for _, d := range m.b.dirs(base) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Delete (stat: %v)", d, err)
		}
	}
	if err := m.Delete(base); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := m.Pids(base); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pids after Delete: %v, want ErrNotFound", err)
	}
	if err := m.Update(ctr, res); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update after Delete: %v, want ErrNotFound", err)
	}
}

func checkLimits(t *testing.T, m *Manager, path string) {
	t.Helper()
	root := cgroupRoot
	if m.Version() == 2 {
		dir := filepath.Join(root, path)
		for file, want := range map[string]string{
			"memory.max": strconv.Itoa(64 << 20),
			"cpu.max":    "50000 100000",
			"cpu.weight": strconv.FormatUint(SharesToWeight(512), 10),
		} {
			if got := readTrim(t, filepath.Join(dir, file)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		return
	}
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes": strconv.Itoa(64 << 20),
		"cpu/cpu.cfs_quota_us":         "50000",
		"cpu/cpu.cfs_period_us":        "100000",
		"cpu/cpu.shares":               "512",
	} {
		ctrl, name := filepath.Split(file)
		p := filepath.Join(root, ctrl, path, name)
		if _, err := os.Stat(filepath.Join(root, ctrl)); err != nil {
			t.Logf("%s not mounted, not checked", ctrl)
			continue
		}
		if got := readTrim(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// cpuset must be populated or nothing can join.
	if _, err := os.Stat(filepath.Join(root, "cpuset")); err == nil {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if got := readTrim(t, filepath.Join(root, "cpuset", path, f)); got == "" {
				t.Errorf("%s of %s is empty", f, path)
			}
		}
	}
}

func checkPids(t *testing.T, m *Manager, path string, want ...int) {
	t.Helper()
	got, err := m.Pids(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Pids(%q) = %v, want %v", path, got, want)
	}
}

func pidsDir(t *testing.T, m *Manager, path string) string {
	t.Helper()
	if m.Version() == 2 {
		return filepath.Join(cgroupRoot, path)
	}
	return filepath.Join(cgroupRoot, "pids", path)
}

func TestManagerErrors(t *testing.T) {
	requireRoot(t)
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "/", "rel", "/a/../b"} {
		if err := m.Create(p, nil); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Create(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := m.Delete(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	missing := "/cubbytest-missing-" + strconv.Itoa(os.Getpid())
	if err := m.Delete(missing); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if _, err := m.ProcsFiles(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("ProcsFiles(missing) = %v, want ErrNotFound", err)
	}
	if err := m.AddProc(missing, os.Getpid()); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddProc(missing) = %v, want ErrNotFound", err)
	}
	if _, err := m.Stats(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stats(missing) = %v, want ErrNotFound", err)
	}
	if m.Version() == 1 {
		if _, err := m.UnifiedDir("/x"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("UnifiedDir on v1 = %v, want ErrUnsupported", err)
		}
	}
	if err := m.AddProc(missing, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AddProc(pid 0) = %v, want ErrInvalidArgument", err)
	}
}

// TestV2Kernel drives the cgroup v2 backend on a hybrid host's cgroup2
// mount, which has no controllers: directories, joining, listing, killing
// (cgroup.kill and the freeze fallback) and removal, without limits.
func TestV2Kernel(t *testing.T) {
	requireRoot(t)
	const mount = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skipf("no cgroup2 mounted at %s (not a hybrid host)", mount)
	}
	b, err := newV2(mount)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{b: b, killTimeout: 10 * time.Second}
	base := testCgroup(t, b)

	for _, tc := range []struct {
		name string
		kill func(path string) error
	}{
		{"cgroup.kill", m.Delete},
		{"freeze fallback", func(path string) error {
			if err := b.freezeKill(filepath.Join(mount, path)); err != nil {
				return err
			}
			return m.Delete(path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := base + "/pod/leaf"
			if err := m.Create(leaf, nil); err != nil {
				t.Fatal(err)
			}
			s := startSleep(t)
			if err := m.AddProc(leaf, s.Process.Pid); err != nil {
				t.Fatal(err)
			}
			if dir, err := m.UnifiedDir(leaf); err != nil || dir != filepath.Join(mount, leaf) {
				t.Errorf("UnifiedDir = %q, %v; want %q", dir, err, filepath.Join(mount, leaf))
			}
			if got := procCgroups(t, s.Process.Pid)[""]; got != leaf {
				t.Errorf("pid %d in %q, want %q", s.Process.Pid, got, leaf)
			}
			checkPids(t, m, base, s.Process.Pid)
			if err := tc.kill(base); err != nil {
				t.Fatal(err)
			}
			var ee *exec.ExitError
			if err := s.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("wait = %v, want killed by SIGKILL", err)
			}
			if _, err := os.Stat(filepath.Join(mount, base)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup still there after Delete (stat: %v)", err)
			}
		})
	}
}

// TestDeleteKillsForkedTree checks that Delete of a pod cgroup kills a
// container's processes that forked after joining, orphans included.
func TestDeleteKillsForkedTree(t *testing.T) {
	requireRoot(t)
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	base := testCgroup(t, m.b)
	ctr := base + "/ctr"
	if err := m.Create(ctr, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}); err != nil {
		t.Fatal(err)
	}

	// The shell waits for a line on stdin, so it forks only once it is in
	// the cgroup, and prints "forked" once the background child exists.
	cmd := exec.Command("sh", "-c", "read x; sleep 60 & echo forked; exec sleep 60")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := m.AddProc(ctr, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("forked\n"))
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "forked\n" {
		t.Fatalf("read child output: %q, %v", line, err)
	}
	pids, err := m.Pids(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 2 {
		t.Fatalf("Pids = %v, want the shell and its background child", pids)
	}

	if err := m.Delete(base); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		// Each is gone or a zombie (the orphan waits for init to reap it).
		if err := unix.Kill(pid, 0); err == nil {
			if state := procState(pid); state != "Z" {
				t.Errorf("pid %d still running (state %q) after Delete", pid, state)
			}
		}
	}
	for _, d := range m.b.dirs(base) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Delete (stat: %v)", d, err)
		}
	}
}

// procState is the one-letter state of pid from /proc, or "" if gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// "pid (comm) S ...": comm may hold spaces, so cut at the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}
