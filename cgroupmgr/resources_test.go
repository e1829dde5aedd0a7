package cgroupmgr

import (
	"errors"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct {
		shares, weight uint64
	}{
		{0, 0},
		{1, 1},
		{2, 1},
		{512, 20},
		{1024, 39},
		{262144, 10000},
		{1 << 20, 10000},
	} {
		if got := SharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/cubby/pod1", true},
		{"/kubepods/besteffort/pod123/abc", true},
		{"", false},
		{"/", false},
		{"relative/path", false},
		{"/a/../b", false},
		{"/a//b", false},
		{"/a/b/", false},
		{"/sys/fs/cgroup/memory/x", false},
		{"/a\x00b", false},
	} {
		err := validatePath(tc.path)
		if tc.ok && err != nil {
			t.Errorf("validatePath(%q) = %v, want nil", tc.path, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("validatePath(%q) = %v, want ErrInvalidPath", tc.path, err)
		}
	}
}

func TestV2Resources(t *testing.T) {
	v := &v2{available: []string{"cpu", "memory", "pids"}}
	for _, tc := range []struct {
		name    string
		res     *specs.LinuxResources
		wantErr error
		check   func(t *testing.T, r *cgroup2.Resources, raw []rawValue)
	}{
		{
			name: "nil",
			check: func(t *testing.T, r *cgroup2.Resources, raw []rawValue) {
				if len(r.Values()) != 0 || len(raw) != 0 {
					t.Errorf("got values %v raw %v, want none", r.Values(), raw)
				}
			},
		},
		{
			name: "cpu shares quota period",
			res: &specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
			}},
			check: func(t *testing.T, r *cgroup2.Resources, _ []rawValue) {
				if r.CPU.Weight == nil || *r.CPU.Weight != 20 {
					t.Errorf("weight = %v, want 20", r.CPU.Weight)
				}
				if r.CPU.Max != "50000 100000" {
					t.Errorf("cpu.max = %q, want %q", r.CPU.Max, "50000 100000")
				}
			},
		},
		{
			name: "unlimited quota is max",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](100000)}},
			check: func(t *testing.T, r *cgroup2.Resources, _ []rawValue) {
				if r.CPU.Max != "max 100000" {
					t.Errorf("cpu.max = %q, want %q", r.CPU.Max, "max 100000")
				}
			},
		},
		{
			name: "quota without period",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](20000)}},
			check: func(t *testing.T, r *cgroup2.Resources, _ []rawValue) {
				if r.CPU.Max != "20000 100000" {
					t.Errorf("cpu.max = %q, want %q", r.CPU.Max, "20000 100000")
				}
			},
		},
		{
			name: "memory limit and swap",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](96 << 20)}},
			check: func(t *testing.T, r *cgroup2.Resources, _ []rawValue) {
				if r.Memory.Max == nil || *r.Memory.Max != 64<<20 {
					t.Errorf("memory.max = %v, want %d", r.Memory.Max, 64<<20)
				}
				if r.Memory.Swap == nil || *r.Memory.Swap != 32<<20 {
					t.Errorf("memory.swap.max = %v, want %d", r.Memory.Swap, 32<<20)
				}
			},
		},
		{
			name: "unlimited memory and swap",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}},
			check: func(t *testing.T, r *cgroup2.Resources, raw []rawValue) {
				if r.Memory.Max != nil || r.Memory.Swap != nil {
					t.Errorf("typed memory.max %v swap %v, want nil", r.Memory.Max, r.Memory.Swap)
				}
				want := []rawValue{{"memory.max", "max"}, {"memory.swap.max", "max"}}
				if len(raw) != 2 || raw[0] != want[0] || raw[1] != want[1] {
					t.Errorf("raw = %v, want %v", raw, want)
				}
			},
		},
		{
			name:    "swap below limit",
			res:     &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](32 << 20)}},
			wantErr: ErrInvalidArgument,
		},
		{
			name: "hugetlb without controller dropped",
			res:  &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}},
			check: func(t *testing.T, r *cgroup2.Resources, _ []rawValue) {
				if r.HugeTlb != nil {
					t.Errorf("hugetlb = %v, want nil", r.HugeTlb)
				}
			},
		},
		{
			name: "unified sorted and last",
			res: &specs.LinuxResources{
				Memory:  &specs.LinuxMemory{Limit: ptr[int64](-1)},
				Unified: map[string]string{"pids.max": "10", "memory.high": "1000000"},
			},
			check: func(t *testing.T, _ *cgroup2.Resources, raw []rawValue) {
				want := []rawValue{{"memory.max", "max"}, {"memory.high", "1000000"}, {"pids.max", "10"}}
				if len(raw) != len(want) {
					t.Fatalf("raw = %v, want %v", raw, want)
				}
				for i := range want {
					if raw[i] != want[i] {
						t.Errorf("raw[%d] = %v, want %v", i, raw[i], want[i])
					}
				}
			},
		},
		{name: "unified path", res: &specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, wantErr: ErrInvalidArgument},
		{name: "unified procs", res: &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, wantErr: ErrInvalidArgument},
		{name: "unified no dot", res: &specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, wantErr: ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, raw, err := v.resources(tc.res)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r, raw)
		})
	}
}

func TestV1Resources(t *testing.T) {
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](2 << 20)}}

	noSwap := &v1{}
	r, err := noSwap.resources(res)
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory.Swap != nil {
		t.Errorf("swap kept without swap accounting: %d", *r.Memory.Swap)
	}
	if res.Memory.Swap == nil {
		t.Error("caller's resources were modified")
	}

	withSwap := &v1{swapAccounting: true}
	if r, _ := withSwap.resources(res); r.Memory.Swap == nil {
		t.Error("swap dropped with swap accounting")
	}

	if r, err := noSwap.resources(nil); err != nil || r == nil {
		t.Errorf("resources(nil) = %v, %v; want empty, nil", r, err)
	}

	_, err = noSwap.resources(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unified on v1: err = %v, want ErrInvalidArgument", err)
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"kubepods-burstable-pod1234_5678.slice": "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice",
		"kubepods.slice":                        "/kubepods.slice",
		"-.slice":                               "/",
		"/kubepods/burstable/pod1":              "/kubepods/burstable/pod1",
	} {
		if got, err := ExpandSlice(in); err != nil || got != want {
			t.Errorf("ExpandSlice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"} {
		if _, err := ExpandSlice(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ExpandSlice(%q) err = %v, want ErrInvalidPath", bad, err)
		}
	}
}
