package server

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox/containerinit"
)

func TestBindMount(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		m       *runtimeapi.Mount
		source  string
		opts    []string
		invalid bool
	}{
		{name: "rw private", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data/"},
			source: dir, opts: []string{"rbind", "rprivate", "rw"}},
		{name: "ro", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", Readonly: true},
			source: dir, opts: []string{"rbind", "rprivate", "ro"}},
		{name: "rro", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", Readonly: true, RecursiveReadOnly: true},
			source: dir, opts: []string{"rbind", "rprivate", "ro", "rro"}},
		{name: "symlink followed", m: &runtimeapi.Mount{HostPath: link, ContainerPath: "/data"},
			source: dir, opts: []string{"rbind", "rprivate", "rw"}},
		{name: "rro without ro", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", RecursiveReadOnly: true}, invalid: true},
		{name: "rro rslave", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, invalid: true},
		{name: "relative", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "data"}, invalid: true},
		{name: "no host path", m: &runtimeapi.Mount{ContainerPath: "/data"}, invalid: true},
		{name: "missing host path", m: &runtimeapi.Mount{HostPath: filepath.Join(dir, "missing"), ContainerPath: "/data"}, invalid: true},
		{name: "id mapped", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", UidMappings: []*runtimeapi.IDMapping{{Length: 1}}}, invalid: true},
		{name: "bad propagation", m: &runtimeapi.Mount{HostPath: dir, ContainerPath: "/data", Propagation: 42}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bindMount(tt.m)
			if tt.invalid {
				if !errors.Is(err, errInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(tt.source, &st); err != nil {
				t.Fatal(err)
			}
			// The source is pinned to what it names at create time.
			opts := append(slices.Clone(tt.opts), containerinit.SourceIDOption(st.Dev, st.Ino))
			if got.Source != tt.source || got.Destination != "/data" || got.Type != "bind" || !reflect.DeepEqual(got.Options, opts) {
				t.Errorf("got %+v, want source %s options %q at /data", got, tt.source, opts)
			}
		})
	}
}

func TestDropReplacedDefaults(t *testing.T) {
	defaults := containerinit.DefaultSpec("/rootfs").Mounts
	dests := func(ms []specs.Mount) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Destination)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		mounts []*runtimeapi.Mount
		want   []string
	}{
		{"none", nil, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}},
		{"same target", []*runtimeapi.Mount{{ContainerPath: "/dev/shm/"}}, []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}},
		{"dev drops everything under it", []*runtimeapi.Mount{{ContainerPath: "/dev"}}, []string{"/proc", "/sys", "/sys/fs/cgroup"}},
		{"a path beside /dev stays", []*runtimeapi.Mount{{ContainerPath: "/devices"}}, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dests(dropReplacedDefaults(slices.Clone(defaults), tc.mounts))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUncoveredVolumes(t *testing.T) {
	got := uncoveredVolumes([]string{"/a", "/b/", "/c"}, []*runtimeapi.Mount{{ContainerPath: "/b"}, {ContainerPath: "/c/"}})
	if !reflect.DeepEqual(got, []string{"/a"}) {
		t.Errorf("uncoveredVolumes = %q, want [/a]", got)
	}
}

func TestSeccompFromPath(t *testing.T) {
	for in, want := range map[string]*runtimeapi.SecurityProfile{
		"":                 {},
		"unconfined":       {ProfileType: runtimeapi.SecurityProfile_Unconfined},
		"runtime/default":  {ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		"docker/default":   {ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		"localhost/p.json": {ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p.json"},
	} {
		got, err := seccompFromPath(in)
		if err != nil {
			t.Errorf("seccompFromPath(%q): %v", in, err)
			continue
		}
		if in == "" {
			if got != nil {
				t.Errorf("seccompFromPath(\"\") = %v, want nil", got)
			}
			continue
		}
		if got.GetProfileType() != want.GetProfileType() || got.GetLocalhostRef() != want.GetLocalhostRef() {
			t.Errorf("seccompFromPath(%q) = %v, want %v", in, got, want)
		}
	}
	if _, err := seccompFromPath("bogus"); !errors.Is(err, errInvalidArgument) {
		t.Errorf("seccompFromPath(bogus) = %v, want invalid argument", err)
	}
}

func TestSeccompProfile(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	local := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}
	tests := []struct {
		name    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		unset   string                   // the unset_seccomp_profile config
		action  specs.LinuxSeccompAction // "" for no profile
		invalid bool
	}{
		{name: "none", sc: &runtimeapi.LinuxContainerSecurityContext{}},
		{name: "none with unset runtime/default", sc: &runtimeapi.LinuxContainerSecurityContext{}, unset: "runtime/default", action: specs.ActErrno},
		{name: "unconfined with unset runtime/default", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}, unset: "runtime/default"},
		{name: "privileged with unset runtime/default", sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}, unset: "runtime/default"},
		{name: "empty is default", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}, action: specs.ActErrno},
		{name: "unconfined", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}},
		{name: "localhost", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: local}, action: specs.ActAllow},
		{name: "privileged ignores", sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true, Seccomp: local}},
		{name: "relative localhost", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p.json"}}, invalid: true},
		{name: "missing localhost", sc: &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile + ".missing"}}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := containerinit.DefaultSpec("/rootfs")
			got, err := seccompProfile(spec, tt.sc, tt.unset)
			if tt.invalid {
				if toStatus(err) == nil || status.Code(toStatus(err)) != codes.InvalidArgument {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				if tt.action != "" {
					t.Fatalf("no profile, want default action %s", tt.action)
				}
				return
			}
			if got.DefaultAction != tt.action {
				t.Errorf("default action %s, want %s", got.DefaultAction, tt.action)
			}
		})
	}
}
