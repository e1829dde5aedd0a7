package server

import (
	"errors"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/rootfs"
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
	shared := []string{"CAP_CHOWN", "CAP_KILL"}
	caps := &specs.LinuxCapabilities{
		Bounding:  shared, // sets sharing one array must not corrupt each other
		Effective: shared,
		Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
	}
	err := applyCapabilities(caps, &runtimeapi.Capability{
		AddCapabilities:  []string{"NET_ADMIN", "CAP_KILL"},
		DropCapabilities: []string{"chown"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CAP_KILL", "CAP_NET_ADMIN"}
	for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted} {
		if !reflect.DeepEqual(set, want) {
			t.Errorf("set %q, want %q", set, want)
		}
	}
	if err := applyCapabilities(caps, &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}); err != nil {
		t.Fatal(err)
	}
	if len(caps.Bounding)+len(caps.Effective)+len(caps.Permitted) != 0 {
		t.Errorf("drop ALL left %+v", caps)
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
