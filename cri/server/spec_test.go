package server

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/rootfs"
	"cubby/sandbox"
)

func TestProcessArgs(t *testing.T) {
	img := rootfs.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default", "cmd"}}
	tests := []struct {
		name          string
		command, args []string
		img           rootfs.ImageConfig
		want          []string
		wantErr       bool
	}{
		{name: "image only", img: img, want: []string{"/entry", "default", "cmd"}},
		{name: "args replace cmd", args: []string{"a"}, img: img, want: []string{"/entry", "a"}},
		{name: "command replaces entrypoint and cmd", command: []string{"/bin/sh"}, img: img, want: []string{"/bin/sh"}},
		{name: "command and args", command: []string{"/bin/sh"}, args: []string{"-c", "x"}, img: img, want: []string{"/bin/sh", "-c", "x"}},
		{name: "cmd only image", img: rootfs.ImageConfig{Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "nothing to run", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := processArgs(&runtimeapi.ContainerConfig{Command: tt.command, Args: tt.args}, tt.img)
			if tt.wantErr {
				if !errors.Is(err, errInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv(
		[]string{"PATH=/default"},
		[]string{"PATH=/image", "A=image"},
		[]*runtimeapi.KeyValue{{Key: "A", Value: []byte("config")}, {Key: "B", Value: []byte("x=y")}},
		"host",
	)
	want := []string{"PATH=/image", "HOSTNAME=host", "A=config", "B=x=y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestApplyCapabilities(t *testing.T) {
	all, err := sandbox.CurrentCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	allBut := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(drop, n) })
	}
	tests := []struct {
		name    string
		c       *runtimeapi.Capability
		uid     uint32
		want    []string
		ambient []string
		wantErr bool
	}{
		{name: "add and drop", c: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "CAP_KILL"}, DropCapabilities: []string{"chown"}},
			want: []string{"CAP_KILL", "CAP_NET_ADMIN"}},
		{name: "drop all", c: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}},
		{name: "drop all add one", c: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_RAW"}},
			want: []string{"CAP_NET_RAW"}},
		{name: "add all", c: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}, want: all},
		{name: "add all drop one", c: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"CAP_SYS_ADMIN"}},
			want: allBut("CAP_SYS_ADMIN")},
		{name: "ambient non-root", uid: 1000, c: &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_BIND_SERVICE", "NET_ADMIN"}},
			want: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"}, ambient: []string{"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"}},
		{name: "ambient root ignored", c: &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_ADMIN"}},
			want: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "unknown", c: &runtimeapi.Capability{AddCapabilities: []string{"BOGUS"}}, wantErr: true},
		{name: "ambient all", uid: 1, c: &runtimeapi.Capability{AddAmbientCapabilities: []string{"ALL"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := []string{"CAP_CHOWN", "CAP_KILL"}
			caps := &specs.LinuxCapabilities{
				Bounding:  shared, // sets sharing one array must not corrupt each other
				Effective: shared,
				Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
			}
			err := applyCapabilities(caps, tt.c, tt.uid)
			if tt.wantErr {
				if !errors.Is(err, errInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted} {
				if !reflect.DeepEqual(set, tt.want) {
					t.Errorf("set %q, want %q", set, tt.want)
				}
			}
			if !reflect.DeepEqual(caps.Ambient, tt.ambient) || !reflect.DeepEqual(caps.Inheritable, tt.ambient) {
				t.Errorf("ambient %q inheritable %q, want %q", caps.Ambient, caps.Inheritable, tt.ambient)
			}
		})
	}
}

func TestLinuxResources(t *testing.T) {
	if linuxResources(nil) != nil {
		t.Errorf("nil resources mapped to non-nil")
	}
	r := linuxResources(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000})
	if r.Memory == nil || *r.Memory.Limit != 64<<20 {
		t.Errorf("memory %+v", r.Memory)
	}
	if r.CPU == nil || *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
		t.Errorf("cpu %+v", r.CPU)
	}
	if r := linuxResources(&runtimeapi.LinuxContainerResources{}); r.Memory != nil || r.CPU != nil {
		t.Errorf("unset resources became limits: %+v", r)
	}
	// kubelet lifts a cpu limit in place with a quota of -1.
	for _, q := range []int64{-1, -100} {
		if r := linuxResources(&runtimeapi.LinuxContainerResources{CpuQuota: q}); r.CPU == nil || r.CPU.Quota == nil || *r.CPU.Quota != -1 {
			t.Errorf("quota %d mapped to cpu %+v, want quota -1", q, r.CPU)
		}
	}
}

func TestLookupPrefix(t *testing.T) {
	m := map[string]int{"abc123": 1, "abd456": 2}
	if v, err := lookup(m, "abc", "pod"); err != nil || v != 1 {
		t.Errorf("unique prefix: %v %v", v, err)
	}
	if _, err := lookup(m, "ab", "pod"); !errors.Is(err, errInvalidArgument) {
		t.Errorf("ambiguous prefix: err = %v", err)
	}
	if _, err := lookup(m, "zz", "pod"); !errors.Is(err, errNotFound) {
		t.Errorf("unknown: err = %v", err)
	}
	if _, err := lookup(m, "", "pod"); !errors.Is(err, errInvalidArgument) {
		t.Errorf("empty: err = %v", err)
	}
}

func TestValidatePodIdentity(t *testing.T) {
	for _, tc := range []struct {
		m    *runtimeapi.PodSandboxMetadata
		want bool
	}{
		{m: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"}, want: true},
		{m: &runtimeapi.PodSandboxMetadata{Name: "../web", Namespace: "a/b", Uid: "ü"}, want: true},
		{m: &runtimeapi.PodSandboxMetadata{Name: "w\x00eb", Namespace: "default"}},
		{m: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "\x00"}},
		{m: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u\x00"}},
	} {
		err := validatePodIdentity(tc.m)
		if (err == nil) != tc.want {
			t.Errorf("%q: %v, want ok %v", tc.m, err, tc.want)
		}
		if err != nil && !errors.Is(err, errInvalidArgument) {
			t.Errorf("%q: %v is not InvalidArgument", tc.m, err)
		}
	}
}

func TestOOMScoreAdjAlwaysSet(t *testing.T) {
	for _, res := range []*runtimeapi.LinuxContainerResources{nil, {}, {OomScoreAdj: 1000}, {OomScoreAdj: -997}} {
		got := oomScoreAdj(res)
		if got == nil || *got != int(res.GetOomScoreAdj()) {
			t.Errorf("oomScoreAdj(%v) = %v, want %d", res, got, res.GetOomScoreAdj())
		}
	}
}
