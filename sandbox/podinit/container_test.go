package podinit

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cubby/sandbox/control"
)

func TestNsPidDepth(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]int{
		"Name:\tsleep\nNSpid:\t4242\n":         1,
		"Name:\tsleep\nNSpid:\t4242\t7\n":      2,
		"Name:\tsleep\nNSpid:\t4242\t7\t1\n":   3,
		"Name:\tsleep\nNgid:\t0\nPid:\t4242\n": 0,
	} {
		f := filepath.Join(dir, "status")
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := nsPidDepth(f)
		if want == 0 {
			if err == nil {
				t.Errorf("%q: depth %d, want an error", content, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: depth %d, %v; want %d", content, got, err, want)
		}
	}
	if d, err := nsPidDepth("/proc/self/status"); err != nil || d < 1 {
		t.Errorf("own depth %d, %v", d, err)
	}
}

func TestOwnPidNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns   []specs.LinuxNamespace
		want bool
	}{
		{[]specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}}, true},
		{[]specs.LinuxNamespace{{Type: specs.MountNamespace}}, false},
		{[]specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/x/pidns"}}, false},
	} {
		if got := ownPidNamespace(&specs.Spec{Linux: &specs.Linux{Namespaces: tc.ns}}); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.ns, got, tc.want)
		}
	}
	if ownPidNamespace(&specs.Spec{}) {
		t.Error("spec without linux section has its own pid namespace")
	}
}

func TestForget(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	s := &server{containers: map[string]*container{
		"gone":    {id: "gone", exited: exited},
		"running": {id: "running", exited: make(chan struct{})},
	}}
	if got := s.dispatch(control.Request{Op: control.OpPing}).Containers; got != 2 {
		t.Fatalf("ping counts %d containers, want 2", got)
	}
	for _, tc := range []struct {
		id      string
		wantErr bool
		left    int
	}{
		{id: "gone", left: 1},
		{id: "gone", left: 1}, // again: idempotent
		{id: "unknown", left: 1},
		{id: "running", wantErr: true, left: 1},
	} {
		resp := s.dispatch(control.Request{Op: control.OpForget, ID: tc.id})
		if (resp.Error != "") != tc.wantErr {
			t.Errorf("forget %q: error %q, want error %v", tc.id, resp.Error, tc.wantErr)
		}
		if got := s.count(); got != tc.left {
			t.Errorf("after forget %q: %d records, want %d", tc.id, got, tc.left)
		}
	}
	if _, ok := s.containers["running"]; !ok {
		t.Error("a running container was forgotten")
	}
}
