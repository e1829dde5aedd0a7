package containerinit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"tool": 0o755, "data": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	pathEnv := "PATH=" + other + ":" + dir

	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
		wantErr    error
	}{
		{"found in PATH", "tool", []string{pathEnv}, filepath.Join(dir, "tool"), nil},
		{"last PATH wins", "tool", []string{"PATH=/nowhere", pathEnv}, filepath.Join(dir, "tool"), nil},
		{"not executable", "data", []string{pathEnv}, "", ErrExecutableNotFound},
		{"directory", "subdir", []string{pathEnv}, "", ErrExecutableNotFound},
		{"missing", "nope", []string{pathEnv}, "", ErrExecutableNotFound},
		{"absolute", filepath.Join(dir, "tool"), nil, filepath.Join(dir, "tool"), nil},
		{"absolute missing", filepath.Join(dir, "nope"), nil, "", os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookPath(tc.file, tc.env)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("lookPath(%q) error = %v, want %v", tc.file, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), `exec: "`) {
					t.Errorf("error %q does not name the command", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("lookPath(%q) = %q, %v; want %q", tc.file, got, err, tc.want)
			}
		})
	}
}

func TestLookPathMessage(t *testing.T) {
	_, err := lookPath("nope", []string{"PATH=" + t.TempDir()})
	if want := `exec: "nope": executable file not found in $PATH`; err == nil || err.Error() != want {
		t.Errorf("lookPath error = %v, want %q", err, want)
	}
}

func TestSysctlPath(t *testing.T) {
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"net.ipv4.ip_forward", "sys/net/ipv4/ip_forward", true},
		{"net/ipv4/conf/eth0.1/forwarding", "sys/net/ipv4/conf/eth0.1/forwarding", true},
		{"kernel.shm_rmid_forced", "sys/kernel/shm_rmid_forced", true},
		{"", "", false},
		{"net/../../etc/passwd", "", false},
		{"net..ipv4", "", false},
		{"/net/ipv4", "", false},
	} {
		got, err := sysctlPath(tc.key)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q ok=%v", tc.key, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("sysctlPath(%q) error %v is not ErrInvalidSpec", tc.key, err)
		}
	}
}

// capMask is caps as the bit mask /proc/<pid>/status shows.
func capMask(caps []capability.Cap) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

func TestParseCaps(t *testing.T) {
	m, err := parseCaps(DefaultCapabilities())
	if err != nil {
		t.Fatal(err)
	}
	// The mask /proc/<pid>/status shows for the default set.
	if got, want := capMask(m), uint64(0xa80425fb); got != want {
		t.Errorf("default capabilities mask = %x, want %x", got, want)
	}
	if _, err := parseCaps([]string{"CAP_FLY"}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("parseCaps(CAP_FLY) error = %v, want ErrInvalidSpec", err)
	}
	if m, err := parseCaps([]string{"cap_sys_admin"}); err != nil || capMask(m) != 1<<21 {
		t.Errorf("parseCaps(cap_sys_admin) = %v, %v", m, err)
	}
}

func TestEnvValue(t *testing.T) {
	env := []string{"A=1", "PATH=/a", "B", "PATH=/b:/c", "C=x=y"}
	for key, want := range map[string]string{"PATH": "/b:/c", "C": "x=y", "A": "1"} {
		if got, ok := envValue(env, key); !ok || got != want {
			t.Errorf("envValue(%s) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if _, ok := envValue(env, "B"); ok {
		t.Error("envValue found an entry without '='")
	}
}

func TestDefaultSpec(t *testing.T) {
	s := DefaultSpec("/run/rootfs")
	if err := validateSpec(s); err == nil {
		t.Error("DefaultSpec without args validates; the CRI layer must set them")
	}
	s.Process.Args = []string{"sh"}
	if err := validateSpec(s); err != nil {
		t.Errorf("DefaultSpec with args: %v", err)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	for _, want := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		found := false
		for _, d := range dests {
			found = found || d == want
		}
		if !found {
			t.Errorf("DefaultSpec lacks mount %s", want)
		}
	}
	if !populatesDev(s.Mounts) {
		t.Error("DefaultSpec's /dev is not populated")
	}
	if v, _ := envValue(s.Process.Env, "PATH"); v != defaultPath {
		t.Errorf("DefaultSpec PATH = %q", v)
	}
	// Two specs must not share slices.
	s2 := DefaultSpec("/other")
	s2.Process.Capabilities.Effective[0] = "CAP_SYS_ADMIN"
	if DefaultSpec("/x").Process.Capabilities.Effective[0] == "CAP_SYS_ADMIN" || s.Process.Capabilities.Bounding[0] == "CAP_SYS_ADMIN" {
		t.Error("DefaultSpec shares capability slices between calls")
	}
}

func TestNamespaceCloneFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		linux   *specs.Linux
		want    uintptr
		wantErr bool
	}{
		{"no linux section", nil, unix.CLONE_NEWNS, false},
		{"default spec", DefaultSpec("/r").Linux, unix.CLONE_NEWNS | unix.CLONE_NEWPID, false},
		{"pod pid namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}}, unix.CLONE_NEWNS, false},
		{"pod net, ipc, uts", &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.NetworkNamespace, Path: "/run/cubby/netns/x"}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		}}, unix.CLONE_NEWNS, false},
		{"join pid namespace (forked from inside it, no flag)", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/run/x/pidns"}}}, unix.CLONE_NEWNS, false},
		{"user namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}}}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := namespaceCloneFlags(tc.linux)
			if tc.wantErr {
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("namespaceCloneFlags error = %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("namespaceCloneFlags = %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
}
