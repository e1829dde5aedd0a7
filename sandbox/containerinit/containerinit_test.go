package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMain doubles as the init stage: Start re-executes this test binary
// with argv[1] == InitArg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		Main()
	}
	if len(os.Args) > 1 && os.Args[1] == ExecArg {
		ExecMain()
	}
	if len(os.Args) > 1 && os.Args[1] == "stage-status" {
		// An exec stage that only shows what it was born with.
		b, _ := os.ReadFile("/proc/self/status")
		os.Stdout.Write(b)
		var st unix.Stat_t
		_ = unix.Stat(".", &st)
		fmt.Printf("Cwd:\t%d:%d\n", st.Dev, st.Ino)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates mount and pid namespaces")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs a static /bin/busybox for the test rootfs")
	}
}

var busyboxApplets = []string{
	"sh", "echo", "cat", "ls", "id", "sleep", "hostname", "readlink",
	"grep", "wc", "touch", "mkdir", "pwd", "test",
}

// newRootfs builds a busybox root filesystem in a temp dir and bind-mounts
// it onto itself, as cubbyd's overlay mount would be.
func newRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
		"etc/group":  "root:x:0:\ntty:x:5:\nuser:x:1000:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind rootfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount rootfs %q: %v", root, err)
		}
	})
	return root
}

func testSpec(root string, args ...string) *specs.Spec {
	s := DefaultSpec(root)
	s.Process.Args = args
	return s
}

// mountsUnder lists the host's mount table entries at or below dir, the
// only place a mount leaked by the init stage could appear (other tests on
// this machine may mount elsewhere at the same time).
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mounts {
		out = append(out, fmt.Sprintf("%d %s %s %s", m.ID, m.Root, m.Mountpoint, m.FSType))
	}
	return out
}

type runResult struct {
	output string
	status unix.WaitStatus
	err    error // from Start
}

// run starts a container from spec with stdout and stderr on a pipe, reaps
// it, and checks that the host's mounts under the rootfs are unchanged.
func run(t *testing.T, spec *specs.Spec, cgroupProcs ...string) runResult {
	t.Helper()
	before := mountsUnder(t, spec.Root.Path)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pid, startErr := Start(StartOptions{
		ID:               t.Name(),
		Spec:             spec,
		InitPath:         "/proc/self/exe",
		InitArgs:         []string{os.Args[0], InitArg},
		Stdout:           w,
		Stderr:           w,
		CgroupProcsFiles: cgroupProcs,
	})
	w.Close()
	out, readErr := io.ReadAll(r)
	res := runResult{output: string(out), err: startErr}
	if pid != 0 {
		if _, err := unix.Wait4(pid, &res.status, 0, nil); err != nil {
			t.Fatalf("wait4 %d: %v", pid, err)
		}
	}
	if readErr != nil {
		t.Fatalf("read container output: %v", readErr)
	}
	if after := mountsUnder(t, spec.Root.Path); !slices.Equal(before, after) {
		t.Errorf("host mounts under %s changed:\nbefore %q\nafter  %q", spec.Root.Path, before, after)
	}
	return res
}

// mustRun is run for a container expected to start and exit 0.
func mustRun(t *testing.T, spec *specs.Spec, cgroupProcs ...string) string {
	t.Helper()
	res := run(t, spec, cgroupProcs...)
	if res.err != nil {
		t.Fatalf("Start: %v\noutput: %s", res.err, res.output)
	}
	if !res.status.Exited() || res.status.ExitStatus() != 0 {
		t.Fatalf("container status %#x, want exit 0; output:\n%s", res.status, res.output)
	}
	return res.output
}

// sections splits output of `echo "== name"; cmd` blocks by name.
func sections(out string) map[string]string {
	m := map[string]string{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "== "); ok {
			name = n
			continue
		}
		if line != "" {
			m[name] += line + "\n"
		}
	}
	return m
}

func TestStartContainerView(t *testing.T) {
	requireRoot(t)
	root := newRootfs(t)
	spec := testSpec(root, "sh", "-c", `
echo "== pid"; echo $$
echo "== cmdline"; cat /proc/1/cmdline; echo
echo "== dev"; ls /dev
echo "== procs"; ls /proc | grep '^[0-9]*$'
echo "== uid"; id -u
echo "== gids"; id -G
echo "== pwd"; pwd
echo "== ptmx"; readlink /dev/ptmx
echo "== capeff"; grep CapEff /proc/self/status
echo "== env"; echo "$FOO"
`)
	spec.Process.Cwd = "/work/dir" // not in the image: created
	spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}}
	spec.Process.Env = append(spec.Process.Env, "FOO=bar")
	s := sections(mustRun(t, spec))

	if got := strings.TrimSpace(s["pid"]); got != "1" {
		t.Errorf("pid in container = %q, want 1", got)
	}
	if got := s["cmdline"]; !strings.HasPrefix(got, "sh\x00-c\x00") {
		t.Errorf("/proc/1/cmdline = %q, want the user command", got)
	}
	dev := strings.Fields(s["dev"])
	for _, want := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin", "stdout", "stderr"} {
		if !slices.Contains(dev, want) {
			t.Errorf("/dev lacks %q: %v", want, dev)
		}
	}
	// Our own pid namespace: sh, and the ls | grep pipeline.
	if procs := strings.Fields(s["procs"]); len(procs) == 0 || len(procs) > 4 || !slices.Contains(procs, "1") {
		t.Errorf("/proc shows pids %v, want the container's few", procs)
	}
	if got := strings.TrimSpace(s["uid"]); got != "1000" {
		t.Errorf("uid = %q, want 1000", got)
	}
	if got := strings.Fields(s["gids"]); !slices.Equal(got, []string{"1000", "5"}) {
		t.Errorf("gids = %v, want [1000 5]", got)
	}
	if got := strings.TrimSpace(s["pwd"]); got != "/work/dir" {
		t.Errorf("cwd = %q, want /work/dir", got)
	}
	if got := strings.TrimSpace(s["ptmx"]); got != "pts/ptmx" {
		t.Errorf("/dev/ptmx -> %q, want pts/ptmx", got)
	}
	// A non-root user without ambient capabilities loses them all at execve.
	if got := strings.Fields(s["capeff"]); len(got) != 2 || got[1] != "0000000000000000" {
		t.Errorf("CapEff of uid 1000 = %v, want 0", got)
	}
	if got := strings.TrimSpace(s["env"]); got != "bar" {
		t.Errorf("FOO = %q, want bar", got)
	}
}

func TestStartDefaultCapabilities(t *testing.T) {
	requireRoot(t)
	root := newRootfs(t)
	s := sections(mustRun(t, testSpec(root, "sh", "-c", `echo "== caps"; grep -E '^Cap(Eff|Prm|Bnd|Amb|Inh)' /proc/self/status`)))

	caps, err := parseCaps(DefaultCapabilities())
	if err != nil {
		t.Fatal(err)
	}
	want := capMask(caps)
	got := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(s["caps"]), "\n") {
		name, hex, _ := strings.Cut(line, ":")
		v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		got[name] = v
	}
	for name, w := range map[string]uint64{"CapEff": want, "CapPrm": want, "CapBnd": want, "CapInh": 0, "CapAmb": 0} {
		if got[name] != w {
			t.Errorf("%s = %016x, want %016x", name, got[name], w)
		}
	}
}

func TestStartExitCode(t *testing.T) {
	requireRoot(t)
	res := run(t, testSpec(newRootfs(t), "sh", "-c", "exit 3"))
	if res.err != nil {
		t.Fatalf("Start: %v", res.err)
	}
	if !res.status.Exited() || res.status.ExitStatus() != 3 {
		t.Errorf("status %#x, want exit 3", res.status)
	}
}

func TestStartMissingExecutable(t *testing.T) {
	requireRoot(t)
	res := run(t, testSpec(newRootfs(t), "nope"))
	if res.err == nil {
		t.Fatal("Start succeeded for a missing executable")
	}
	if !strings.Contains(res.err.Error(), `exec: "nope": executable file not found in $PATH`) {
		t.Errorf("error %q does not name the missing executable", res.err)
	}
	if !errors.Is(res.err, ErrExecutableNotFound) {
		t.Errorf("errors.Is(%v, ErrExecutableNotFound) = false", res.err)
	}
	var ie *InitError
	if !errors.As(res.err, &ie) || ie.Step != "resolve executable" {
		t.Errorf("error %v is not an InitError of step resolve executable", res.err)
	}
	if res.status.Exited() && res.status.ExitStatus() == 0 {
		t.Errorf("init stage exited 0 after failing")
	}
}

func TestStartInvalidSpec(t *testing.T) {
	pid, err := Start(StartOptions{Spec: &specs.Spec{Root: &specs.Root{Path: "/"}}})
	if pid != 0 || !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Start(no process) = %d, %v; want 0, ErrInvalidSpec", pid, err)
	}
}

func TestStartReadonlyRootAndPaths(t *testing.T) {
	requireRoot(t)
	root := newRootfs(t)
	spec := testSpec(root, "sh", "-c", `
echo "== touch-root"; touch /x 2>/dev/null && echo writable || echo readonly
echo "== touch-shm"; touch /dev/shm/x && echo writable || echo readonly
echo "== mountinfo"; cat /proc/self/mountinfo
echo "== proc-sys"; grep ' /proc/sys ' /proc/self/mountinfo | grep -c ' ro,'
echo "== cgroup"; ls /sys/fs/cgroup
echo "== sysctl"; cat /proc/sys/net/ipv4/ip_unprivileged_port_start
`)
	spec.Root.Readonly = true
	// The test shares the host's network namespace: write back the current
	// value, which still proves the sysctl step runs.
	cur, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": strings.TrimSpace(string(cur))}
	s := sections(mustRun(t, spec))

	checks := map[string]string{
		"touch-root": "readonly",
		"touch-shm":  "writable",
		"proc-sys":   "1",
		"sysctl":     strings.TrimSpace(string(cur)),
	}
	for name, want := range checks {
		if got := strings.TrimSpace(s[name]); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	mounted := map[string]bool{}
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(s["mountinfo"]), nil)
	if err != nil {
		t.Fatalf("container's mountinfo: %v", err)
	}
	for _, m := range infos {
		mounted[m.Mountpoint] = true
	}
	for _, p := range DefaultMaskedPaths() {
		if _, err := os.Stat(p); err != nil {
			continue // the kernel lacks it: nothing to mask
		}
		if !mounted[p] {
			t.Errorf("masked path %s is not covered in the container", p)
		}
	}
	if s["cgroup"] == "" {
		t.Errorf("/sys/fs/cgroup is empty in the container")
	}
}

// An image symlink must not redirect a mount to the host: /data points at
// an absolute host path, and the bind mount must land inside the rootfs.
func TestStartMountTargetStaysInRootfs(t *testing.T) {
	requireRoot(t)
	root := newRootfs(t)
	hostDir := t.TempDir() // the symlink's target, on the host
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(root, "data")); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(root, "cat", "/data/marker")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	before := mountsUnder(t, hostDir)

	if got := mustRun(t, spec); got != "inside\n" {
		t.Errorf("container read %q through the symlink, want the bind mount's marker", got)
	}
	if st, err := os.Stat(filepath.Join(root, hostDir)); err != nil || !st.IsDir() {
		t.Errorf("mount target was not created inside the rootfs at %s: %v", filepath.Join(root, hostDir), err)
	}
	if after := mountsUnder(t, hostDir); !slices.Equal(before, after) {
		t.Errorf("host dir %s got mounts: %q", hostDir, after)
	}
}

func TestStartJoinsCgroup(t *testing.T) {
	requireRoot(t)
	const hierarchy = "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(hierarchy, "cgroup.procs")); err != nil {
		t.Skipf("needs the cgroup v1 pids hierarchy at %s", hierarchy)
	}
	name := fmt.Sprintf("cubby-containerinit-test-%d", os.Getpid())
	dir := filepath.Join(hierarchy, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered before run's reap, so it runs after the container is gone.
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	root := newRootfs(t)
	const script = `grep pids /proc/self/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs; ls /sys/fs/cgroup/pids`
	// Its own cgroup namespace (the default): the cgroup is its "/".
	spec := testSpec(root, "sh", "-c", script)
	out := mustRun(t, spec, filepath.Join(dir, "cgroup.procs"))
	if !strings.Contains(out, "pids:/\n") {
		t.Errorf("container in its own cgroup namespace does not see its cgroup as /:\n%s", out)
	}
	// The container sees its own cgroup dir, with itself (pid 1) in it, at
	// /sys/fs/cgroup/pids.
	if !strings.Contains(out, "\n1\n") || !strings.Contains(out, "pids.max") {
		t.Errorf("/sys/fs/cgroup/pids does not show the container's cgroup:\n%s", out)
	}
	// Without a cgroup namespace it sees the host's path.
	spec = testSpec(root, "sh", "-c", script)
	spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.CgroupNamespace })
	out = mustRun(t, spec, filepath.Join(dir, "cgroup.procs"))
	if !strings.Contains(out, "pids:/"+name) {
		t.Errorf("container is not in cgroup %s:\n%s", name, out)
	}
}

// Without a pid namespace in the spec the container shares the parent's
// (in cubby, the pod's): it is not PID 1 and sees its parent.
func TestStartSharedPIDNamespace(t *testing.T) {
	requireRoot(t)
	spec := testSpec(newRootfs(t), "sh", "-c", `echo $$; test -d /proc/`+strconv.Itoa(os.Getpid())+` && echo sees-parent`)
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	out := strings.Fields(mustRun(t, spec))
	if len(out) != 2 || out[0] == "1" || out[1] != "sees-parent" {
		t.Errorf("container in the shared pid namespace printed %q, want its host pid and sees-parent", out)
	}
}

func TestChildDeath(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		sig  unix.Signal
		want string
	}{
		{"exit status", []string{"/bin/sh", "-c", "exit 3"}, 0, ", exit status 3"},
		{"killed", []string{"/bin/sleep", "60"}, unix.SIGKILL, ", killed by signal 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, err := os.StartProcess(tc.args[0], tc.args, &os.ProcAttr{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.sig != 0 {
				_ = proc.Signal(tc.sig)
			}
			var got string
			for i := 0; i < 100 && got == ""; i++ {
				got = childDeath(proc.Pid)
			}
			if got != tc.want {
				t.Errorf("childDeath = %q, want %q", got, tc.want)
			}
			// childDeath must not have reaped it.
			st, err := proc.Wait()
			if err != nil {
				t.Fatalf("wait after childDeath: %v", err)
			}
			t.Logf("reaped: %v", st)
		})
	}
}
