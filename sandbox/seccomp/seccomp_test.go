package seccomp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func specWithCaps(caps ...string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}}
}

func TestCompileDefaultProfile(t *testing.T) {
	plain, err := DefaultProfile(specWithCaps("CAP_CHOWN"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := DefaultProfile(specWithCaps("CAP_CHOWN", "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Compile(plain)
	if err != nil {
		t.Fatalf("compile default profile: %v", err)
	}
	fa, err := Compile(admin)
	if err != nil {
		t.Fatalf("compile default profile with CAP_SYS_ADMIN: %v", err)
	}
	if len(fp.Program) == 0 || len(fp.Program)%8 != 0 {
		t.Fatalf("program of %d bytes", len(fp.Program))
	}
	// CAP_SYS_ADMIN opens mount, unshare, setns...: a different program.
	if string(fp.Program) == string(fa.Program) {
		t.Errorf("the default profile ignores CAP_SYS_ADMIN")
	}
	t.Logf("default profile: %d instructions", len(fp.Program)/8)
}

func TestCompile(t *testing.T) {
	errno := uint(38)
	for _, tc := range []struct {
		name    string
		profile specs.LinuxSeccomp
		invalid bool
	}{
		{name: "allow all but one", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: &errno}}}},
		{name: "unknown syscall skipped", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_syscall", "chmod"}, Action: specs.ActKillProcess}}}},
		{name: "rule equal to default skipped", profile: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}, {Names: []string{"read"}, Action: specs.ActAllow}}}},
		{name: "two tests of one argument", profile: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 0, Value: 8, Op: specs.OpEqualTo}}}}}},
		{name: "masked equal", profile: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}}}}},
		{name: "architectures", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}}}},
		{name: "log flag", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}}}},
		{name: "unknown action", profile: specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, invalid: true},
		{name: "unknown rule action", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: "SCMP_ACT_BOGUS"}}}, invalid: true},
		{name: "unknown operator", profile: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_BOGUS"}}}}}, invalid: true},
		{name: "unknown architecture", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_BOGUS"}}, invalid: true},
		{name: "notify listener", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"}, invalid: true},
		{name: "unknown flag", profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(&tc.profile)
			if tc.invalid {
				if !errors.Is(err, ErrInvalidProfile) {
					t.Fatalf("Compile = %v, want ErrInvalidProfile", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"defaultAction":`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(good, specWithCaps())
	if err != nil {
		t.Fatalf("LoadProfile: %v", err)
	}
	if p.DefaultAction != specs.ActAllow || len(p.Syscalls) != 1 {
		t.Errorf("profile %+v", p)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.json")} {
		if _, err := LoadProfile(path, specWithCaps()); !errors.Is(err, ErrInvalidProfile) {
			t.Errorf("LoadProfile(%s) = %v, want ErrInvalidProfile", path, err)
		}
	}
}

// BenchmarkCompileDefault is what RuntimeDefault costs a CreateContainer:
// resolving the default profile for the spec and compiling it.
func BenchmarkCompileDefault(b *testing.B) {
	spec := specWithCaps("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")
	for b.Loop() {
		p, err := DefaultProfile(spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCache(t *testing.T) {
	c := NewCache()
	p, err := DefaultProfile(specWithCaps("CAP_CHOWN"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := DefaultProfile(specWithCaps("CAP_CHOWN"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Compile(again)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("the same profile was compiled twice")
	}
	admin, err := DefaultProfile(specWithCaps("CAP_CHOWN", "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Compile(admin)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Program) == string(a.Program) {
		t.Errorf("a different profile got the cached filter")
	}
	if f, err := c.Compile(nil); f != nil || err != nil {
		t.Errorf("Compile(nil) = %v, %v", f, err)
	}
}

// BenchmarkCompileDefaultCached is the same with the cache of cubbyd.
func BenchmarkCompileDefaultCached(b *testing.B) {
	spec := specWithCaps("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")
	c := NewCache()
	for b.Loop() {
		p, err := DefaultProfile(spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}
