package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestExecJoinsContainer starts a container, then execs into it as another
// user and checks that the process sees the container's filesystem, pid
// namespace and working directory, with the exec's credentials.
func TestExecJoinsContainer(t *testing.T) {
	requireRoot(t)
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

	exec := func(user specs.User, cwd string, args ...string) (string, error) {
		es := testSpec(root, args...)
		es.Process.User = user
		es.Process.Cwd = cwd
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
			InitPath: "/proc/self/exe",
			InitArgs: []string{os.Args[0], ExecArg},
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

	_, err = exec(specs.User{}, "/", "no-such-command")
	if !errors.Is(err, ErrExecutableNotFound) {
		t.Errorf("exec of a missing command: %v, want ErrExecutableNotFound", err)
	}
}
