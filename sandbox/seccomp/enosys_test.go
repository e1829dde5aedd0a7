package seccomp

import (
	"encoding/binary"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Answers of a seccomp filter.
const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
)

// runFilter runs program (as exported: host byte order) on a syscall
// nr of arch in x/net/bpf's VM, which loads words big-endian: the
// seccomp_data it gets is written that way.
func runFilter(t *testing.T, program []byte, arch, nr uint32) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(program)/8)
	for i := range raw {
		b := program[i*8:]
		raw[i] = bpf.RawInstruction{Op: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("the filter is not a valid program: %v", err)
	}
	data := make([]byte, 64) // struct seccomp_data
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], arch)
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(ret)
}

// TestENOSYSStub runs the default profile's filter on syscalls newer than
// the profile (ENOSYS, as from an older kernel), known but unlisted ones
// (the profile's EPERM) and allowed ones, for each ABI of x86_64.
func TestENOSYSStub(t *testing.T) {
	profile, err := DefaultProfile(specWithCaps("CAP_CHOWN"))
	if err != nil {
		t.Fatal(err)
	}
	hasArch := func(a specs.Arch) bool {
		for _, x := range profile.Architectures {
			if x == a {
				return true
			}
		}
		return false
	}
	if !hasArch(specs.ArchX86_64) || !hasArch(specs.ArchX32) || !hasArch(specs.ArchX86) {
		t.Skipf("the default profile here is not for x86: %v", profile.Architectures)
	}
	f, err := Compile(profile)
	if err != nil {
		t.Fatal(err)
	}
	const x32 = x32SyscallBit
	for _, tc := range []struct {
		name     string
		arch, nr uint32
		want     uint32
	}{
		{"x86_64 beyond the table", unix.AUDIT_ARCH_X86_64, 1000, retENOSYS},
		{"x86_64 keyctl (unlisted)", unix.AUDIT_ARCH_X86_64, unix.SYS_KEYCTL, retEPERM},
		{"x86_64 read", unix.AUDIT_ARCH_X86_64, unix.SYS_READ, retAllow},
		{"x86_64 -1", unix.AUDIT_ARCH_X86_64, ^uint32(0), retENOSYS},
		{"x32 beyond the table", unix.AUDIT_ARCH_X86_64, x32 | 1000, retENOSYS},
		{"x32 read", unix.AUDIT_ARCH_X86_64, x32 | unix.SYS_READ, retAllow},
		{"x32 keyctl (unlisted)", unix.AUDIT_ARCH_X86_64, x32 | unix.SYS_KEYCTL, retEPERM},
		{"i386 beyond the table", unix.AUDIT_ARCH_I386, 1000, retENOSYS},
		{"i386 keyctl (unlisted)", unix.AUDIT_ARCH_I386, 288, retEPERM},
		{"i386 read", unix.AUDIT_ARCH_I386, 3, retAllow},
	} {
		if got := runFilter(t, f.Program, tc.arch, tc.nr); got != tc.want {
			t.Errorf("%s: filter answers %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// An architecture the profile does not have is the filter's to
	// refuse, stub or not.
	if got := runFilter(t, f.Program, unix.AUDIT_ARCH_AARCH64, 1000); got == retENOSYS || got == retAllow {
		t.Errorf("aarch64 syscall under an x86 profile: %#x, want the filter's bad-arch action", got)
	}
}

// TestENOSYSStubLeftOut checks the profiles that get no stub: allow by
// default (new syscalls are allowed anyway) and ENOSYS by default.
func TestENOSYSStubLeftOut(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscall numbers here are x86_64's")
	}
	enosys := uint(unix.ENOSYS)
	rules := []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}, {Names: []string{"keyctl"}, Action: specs.ActErrno}}
	for _, tc := range []struct {
		name    string
		profile specs.LinuxSeccomp
		want    uint32
	}{
		{"allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}, retAllow},
		{"errno ENOSYS", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enosys, Syscalls: rules}, retENOSYS},
		{"errno", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules}, retENOSYS},
	} {
		f, err := Compile(&tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		if got := runFilter(t, f.Program, unix.AUDIT_ARCH_X86_64, 1000); got != tc.want {
			t.Errorf("%s: syscall 1000 answered %#x, want %#x", tc.name, got, tc.want)
		}
		// Between the profile's highest syscall (keyctl) and the end of
		// the table the default action holds.
		if got := runFilter(t, f.Program, unix.AUDIT_ARCH_X86_64, unix.SYS_KEYCTL-1); tc.name == "errno" && got != retEPERM {
			t.Errorf("%s: syscall below the profile's highest answered %#x, want EPERM", tc.name, got)
		}
	}
}
