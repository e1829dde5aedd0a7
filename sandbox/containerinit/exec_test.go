package containerinit

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/sealedexe"
)

// TestExecJoinsContainer starts a container, then execs into it as another
// user and checks that the process sees the container's filesystem, pid
// namespace and working directory, with the exec's credentials.
// requireStaticTestBinary skips a test that runs this test binary as a
// stage inside a container's mount namespace: a dynamically linked build
// (-race links cgo) finds no ELF interpreter in the test rootfs, and execve
// fails with ENOENT. cubby-pod itself is always static.
func requireStaticTestBinary(t *testing.T) {
	t.Helper()
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skip("the test binary is dynamically linked (race or cgo build): it cannot run inside the test container")
		}
	}
}

func TestExecJoinsContainer(t *testing.T) {
	requireRoot(t)
	requireStaticTestBinary(t)
	root := newRootfs(t)
	spec := testSpec(root, "sleep", "1000")
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	pid, err := Start(StartOptions{ID: t.Name(), Spec: spec, InitPath: "/proc/self/exe", InitArgs: []string{os.Args[0], InitArg}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
	})
	open := func(name string) *os.File {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	mntLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := sealedexe.Seal("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()

	exec := func(user specs.User, cwd string, args ...string) (string, error) {
		es := testSpec(root, args...)
		es.Process.User = user
		es.Process.Cwd = cwd
		initArgs := []string{os.Args[0], ExecArg}
		if args[0] == "stage-status" {
			initArgs = []string{os.Args[0], "stage-status"}
			es.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}
			es.Process.NoNewPrivileges = true
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		epid, err := Exec(ExecOptions{
			ID:       t.Name(),
			Spec:     es,
			PID:      open("pid"),
			Join:     []Namespace{{Type: specs.MountNamespace, File: open("mnt")}},
			Binary:   bin,
			InitArgs: initArgs,
			Stdout:   w,
			Stderr:   w,
		})
		w.Close()
		out, _ := io.ReadAll(r)
		if epid != 0 {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(epid, &ws, 0, nil)
		}
		return string(out), err
	}

	out, err := exec(specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}}, "/tmp",
		"sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; id -u; id -G; pwd; readlink /proc/self/ns/mnt`)
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, out)
	}
	want := "sleep 1000 \n1000\n1000 5\n/tmp\n" + mntLink + "\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("exec saw\n%q\nwant prefix\n%q", out, want)
	}

	// The stage is born with a narrow bounding set (as far as this
	// process's own allows), in the sealed binary's directory.
	out, _ = exec(specs.User{}, "/", "stage-status")
	wantBnd := uint64(1)<<unix.CAP_KILL | 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID | 1<<unix.CAP_SETPCAP | 1<<unix.CAP_SYS_RESOURCE | 1<<unix.CAP_DAC_OVERRIDE
	wantBnd &= ownBounding(t)
	if !strings.Contains(out, fmt.Sprintf("CapBnd:\t%016x\n", wantBnd)) {
		t.Errorf("exec stage status lacks CapBnd %016x:\n%s", wantBnd, out)
	}
	var dir unix.Stat_t
	if err := unix.Fstat(bin.Fd(), &dir); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Cwd:\t%d:%d\n", dir.Dev, dir.Ino); !strings.Contains(out, want) {
		t.Errorf("exec stage status lacks %q (its working directory is not the sealed binary's):\n%s", want, out)
	}

	_, err = exec(specs.User{}, "/", "no-such-command")
	if !errors.Is(err, ErrExecutableNotFound) {
		t.Errorf("exec of a missing command: %v, want ErrExecutableNotFound", err)
	}
}

// TestExecProcessRoundTrip checks that the exec stage's flat wire form
// keeps every field the process steps read.
func TestExecProcessRoundTrip(t *testing.T) {
	umask, oom := uint32(0o027), 500
	full := DefaultSpec("/rootfs")
	full.Process.Args = []string{"sh", "-c", "id"}
	full.Process.Cwd = "/work"
	full.Process.Terminal = true
	full.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 6}, Umask: &umask}
	full.Process.NoNewPrivileges = true
	full.Process.OOMScoreAdj = &oom
	full.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}}
	full.Process.Capabilities.Ambient = []string{"CAP_NET_RAW"}
	full.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"sethostname"}, Action: specs.ActAllow}}}
	bare := DefaultSpec("/rootfs")
	bare.Process.Capabilities = nil
	bare.Linux = nil

	for _, tc := range []struct {
		name string
		spec *specs.Spec
	}{{"full", full}, {"no capabilities, no linux", bare}} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := toExecProcess(ExecSpec(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var back execProcess
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			got, err := back.spec()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Process, tc.spec.Process) {
				t.Errorf("process:\n got %+v\nwant %+v", got.Process, tc.spec.Process)
			}
			if got.Root.Path != tc.spec.Root.Path {
				t.Errorf("root %q, want %q", got.Root.Path, tc.spec.Root.Path)
			}
			wantSeccomp := tc.spec.Linux != nil && tc.spec.Linux.Seccomp != nil
			if gotSeccomp := back.Seccomp; gotSeccomp != wantSeccomp {
				t.Errorf("confined by seccomp: %v, want %v", gotSeccomp, wantSeccomp)
			}
		})
	}
}

// TestStartTerminal checks that a container with a terminal gets one of
// its own devpts as stdio and controlling terminal, and that its master
// reaches the parent.
func TestStartTerminal(t *testing.T) {
	requireRoot(t)
	spec := testSpec(newRootfs(t), "sh", "-c", `tty; test -t 1 && echo is-a-tty; read x; echo got-$x`)
	spec.Process.Terminal = true
	var master *os.File
	pid, err := Start(StartOptions{ID: t.Name(), Spec: spec, InitPath: "/proc/self/exe", InitArgs: []string{os.Args[0], InitArg},
		Terminal: func(m *os.File) { master = m }})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
	}()
	if master == nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatal("no terminal master came back")
	}
	defer master.Close()
	if _, err := master.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(out), "got-hello") {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil { // EIO once the container has exited
			break
		}
	}
	for _, want := range []string{"/dev/pts/0", "is-a-tty", "got-hello"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
}

// ownBounding is this process's capability bounding set.
func ownBounding(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return 0
}

// TestIsolateFds: a thread that isolated its descriptors sees only those it
// kept, and the process's table keeps all of its own.
func TestIsolateFds(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	type result struct {
		fds []string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread has a table of its own
		if err := isolateFds([]int{int(w.Fd())}); err != nil {
			ch <- result{err: err}
			return
		}
		// Open (and close) the directory listing in this thread's table.
		d, err := os.Open("/proc/thread-self/fd")
		if err != nil {
			ch <- result{err: err}
			return
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		ch <- result{names, err}
	}()
	res := <-ch
	if res.err != nil {
		t.Fatal(res.err)
	}
	// The pipe's write end, and the listing's own descriptor.
	if len(res.fds) != 2 || !slices.Contains(res.fds, strconv.Itoa(int(w.Fd()))) {
		t.Errorf("isolated thread has descriptors %v, want %d and the listing's", res.fds, w.Fd())
	}
	if _, err := unix.FcntlInt(r.Fd(), unix.F_GETFD, 0); err != nil {
		t.Errorf("the process lost a descriptor: %v", err)
	}
}
