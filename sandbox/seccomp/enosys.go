package seccomp

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The ENOSYS stub goes before the program libseccomp generates. A profile
// lists the syscalls of the kernels its author knew; under a deny-by-default
// profile a newer syscall (clone3, once) would fail with the default errno,
// EPERM, and a libc that tries the new syscall first and falls back to an
// older one only on ENOSYS breaks. So, as runc does, a syscall numbered
// above the highest one the profile names (as libseccomp numbers it for
// that architecture) gets ENOSYS, as from a kernel that lacks it; every
// syscall up to that number keeps the profile's verdict (a known but
// unlisted one its default action). The stub, for each architecture of
// the profile (and the native one, which profiles sometimes leave out):
//
//	ld  [4]                        arch
//	jeq AUDIT_ARCH_a, 0, 1         one pair per architecture
//	ja  section_a
//	ja  filter                     any other arch: libseccomp decides
//	section_a:
//	ld  [0]                        syscall number
//	(x86_64: jset 0x40000000 picks the x32 or the x86_64 bound)
//	(s390, s390x: jeq 0 → ENOSYS, the multiplexer unknown numbers become)
//	jgt max_a, 0, 1
//	ret ERRNO(ENOSYS)
//	ja  filter
//	filter: the libseccomp program (it loads the arch again first)
//
// Conditional jumps stay within a section (their offsets are one byte);
// only the unconditional ones, whose offset is 32 bits, go far.

// Classic BPF opcodes of the stub.
const (
	bpfLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJa     = unix.BPF_JMP | unix.BPF_JA
	bpfJeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgt    = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	bpfJset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRet    = unix.BPF_RET | unix.BPF_K
)

// Offsets in struct seccomp_data.
const (
	seccompDataNr   = 0
	seccompDataArch = 4
)

// x32SyscallBit marks the syscalls of x32 processes, which share
// AUDIT_ARCH_X86_64 with x86_64 (__X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// retENOSYS is the filter's answer for a syscall newer than the profile.
const retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// auditArches maps libseccomp's architectures to the kernel's AUDIT_ARCH
// value that seccomp_data.arch carries; x32 shares x86_64's.
var auditArches = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchX86:         unix.AUDIT_ARCH_I386,
	libseccomp.ArchAMD64:       unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX32:         unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchARM:         unix.AUDIT_ARCH_ARM,
	libseccomp.ArchARM64:       unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchMIPS:        unix.AUDIT_ARCH_MIPS,
	libseccomp.ArchMIPS64:      unix.AUDIT_ARCH_MIPS64,
	libseccomp.ArchMIPS64N32:   unix.AUDIT_ARCH_MIPS64N32,
	libseccomp.ArchMIPSEL:      unix.AUDIT_ARCH_MIPSEL,
	libseccomp.ArchMIPSEL64:    unix.AUDIT_ARCH_MIPSEL64,
	libseccomp.ArchMIPSEL64N32: unix.AUDIT_ARCH_MIPSEL64N32,
	libseccomp.ArchPPC:         unix.AUDIT_ARCH_PPC,
	libseccomp.ArchPPC64:       unix.AUDIT_ARCH_PPC64,
	libseccomp.ArchPPC64LE:     unix.AUDIT_ARCH_PPC64LE,
	libseccomp.ArchS390:        unix.AUDIT_ARCH_S390,
	libseccomp.ArchS390X:       unix.AUDIT_ARCH_S390X,
	libseccomp.ArchRISCV64:     unix.AUDIT_ARCH_RISCV64,
	libseccomp.ArchLOONGARCH64: unix.AUDIT_ARCH_LOONGARCH64,
}

// archBound is the highest syscall number a profile names for one
// architecture, as seccomp_data.nr carries it (x32's with its bit).
type archBound struct {
	audit uint32
	arch  libseccomp.ScmpArch
	max   uint32
}

// wantsENOSYSStub says whether a profile with default action def (errno
// defErrno) gets the stub: not when everything unlisted is allowed anyway
// (allow, log, trace: a tracer handles new syscalls itself), nor when the
// default already is ENOSYS.
func wantsENOSYSStub(def specs.LinuxSeccompAction, defErrno *uint) bool {
	switch def {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
		return false
	case specs.ActErrno:
		return defErrno == nil || *defErrno != uint(unix.ENOSYS)
	}
	return true
}

// profileBounds returns, per architecture of profile plus the native one,
// the highest syscall number its rules name; architectures for which no
// name resolves are left out.
func profileBounds(profile *specs.LinuxSeccomp) ([]archBound, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	arches := []libseccomp.ScmpArch{native}
	for _, a := range profile.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
		if err != nil {
			return nil, fmt.Errorf("%w: architecture %q: %v", ErrInvalidProfile, a, err)
		}
		if !slices.Contains(arches, arch) {
			arches = append(arches, arch)
		}
	}
	var out []archBound
	for _, arch := range arches {
		audit, ok := auditArches[arch]
		if !ok {
			continue // libseccomp knows it, the stub does not: no stub there
		}
		b := archBound{audit: audit, arch: arch}
		for _, rule := range profile.Syscalls {
			for _, name := range rule.Names {
				if nr, err := libseccomp.GetSyscallFromNameByArch(name, arch); err == nil && nr >= 0 {
					b.max = max(b.max, uint32(nr))
				}
			}
		}
		if b.max > 0 {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b archBound) int { return cmp.Or(cmp.Compare(a.audit, b.audit), cmp.Compare(a.arch, b.arch)) })
	return out, nil
}

// enosysStub is the stub for bounds (see the top of this file), nil when
// there are none.
func enosysStub(bounds []archBound) ([]unix.SockFilter, error) {
	byAudit := map[uint32][]archBound{}
	var audits []uint32
	for _, b := range bounds {
		if _, ok := byAudit[b.audit]; !ok {
			audits = append(audits, b.audit)
		}
		byAudit[b.audit] = append(byAudit[b.audit], b)
	}
	if len(audits) == 0 {
		return nil, nil
	}
	sections := make([][]unix.SockFilter, len(audits))
	for i, audit := range audits {
		s, err := stubSection(byAudit[audit])
		if err != nil {
			return nil, err
		}
		sections[i] = s
	}

	// Header: the arch load, a jeq/ja pair per architecture, the ja for
	// any other; then the sections. Jumps are relative to the next
	// instruction; the filter starts right after the stub.
	header := 1 + 2*len(sections) + 1
	size := header
	starts := make([]int, len(sections))
	for i, s := range sections {
		starts[i] = size
		size += len(s)
	}
	prog := make([]unix.SockFilter, 0, size)
	prog = append(prog, stmt(bpfLdAbsW, seccompDataArch))
	for i, audit := range audits {
		prog = append(prog, jump(bpfJeq, audit, 0, 1))
		prog = append(prog, stmt(bpfJa, uint32(starts[i]-(len(prog)+1))))
	}
	prog = append(prog, stmt(bpfJa, uint32(size-(len(prog)+1))))
	for _, s := range sections {
		for _, ins := range s {
			if ins.Code == bpfJa { // every ja of a section goes to the filter
				ins.K = uint32(size - (len(prog) + 1))
			}
			prog = append(prog, ins)
		}
	}
	return prog, nil
}

// stubSection is the section of one AUDIT_ARCH: one bound, or x86_64's
// and x32's. Its ja (to the filter) is patched by the caller.
func stubSection(bounds []archBound) ([]unix.SockFilter, error) {
	tail := []unix.SockFilter{stmt(bpfRet, retENOSYS), stmt(bpfJa, 0)}
	s := []unix.SockFilter{stmt(bpfLdAbsW, seccompDataNr)}
	if bounds[0].audit == unix.AUDIT_ARCH_X86_64 {
		return append(s, x86Checks(bounds)...), nil
	}
	if len(bounds) != 1 {
		return nil, fmt.Errorf("seccomp: %d architectures share AUDIT_ARCH %#x", len(bounds), bounds[0].audit)
	}
	if a := bounds[0].arch; a == libseccomp.ArchS390 || a == libseccomp.ArchS390X {
		// Unknown syscalls reach the filter as 0, the old multiplexer
		// setup(2) no one calls any more: ENOSYS for it too.
		s = append(s, jump(bpfJeq, 0, 1, 0))
	}
	s = append(s, jump(bpfJgt, bounds[0].max, 0, 1))
	return append(s, tail...), nil
}

// x86Checks bound x86_64's and x32's syscalls apart: the x32 bit picks
// which bound applies; a mode the profile has no bound for goes to the
// filter unchecked. They end with ret ENOSYS and ja filter.
func x86Checks(bounds []archBound) []unix.SockFilter {
	var amd64, x32 *archBound
	for i := range bounds {
		if bounds[i].arch == libseccomp.ArchX32 {
			x32 = &bounds[i]
		} else {
			amd64 = &bounds[i]
		}
	}
	tail := []unix.SockFilter{stmt(bpfRet, retENOSYS), stmt(bpfJa, 0)}
	switch {
	case amd64 != nil && x32 != nil:
		return append([]unix.SockFilter{
			jump(bpfJset, x32SyscallBit, 1, 0), // x32: skip to its check
			jump(bpfJgt, amd64.max, 1, 2),      // → ret / ja
			jump(bpfJgt, x32.max, 0, 1),        // → ret / ja
		}, tail...)
	case amd64 != nil:
		return append([]unix.SockFilter{
			jump(bpfJset, x32SyscallBit, 2, 0), // x32: to the filter
			jump(bpfJgt, amd64.max, 0, 1),
		}, tail...)
	default:
		return append([]unix.SockFilter{
			jump(bpfJset, x32SyscallBit, 0, 2), // x86_64: to the filter
			jump(bpfJgt, x32.max, 0, 1),
		}, tail...)
	}
}

// withENOSYSStub returns prog, the libseccomp program of profile, with the
// stub before it when the profile wants one.
func withENOSYSStub(profile *specs.LinuxSeccomp, prog []byte) ([]byte, error) {
	if !wantsENOSYSStub(profile.DefaultAction, profile.DefaultErrnoRet) {
		return prog, nil
	}
	bounds, err := profileBounds(profile)
	if err != nil {
		return nil, err
	}
	stub, err := enosysStub(bounds)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(stub)*sockFilterSize+len(prog))
	for _, ins := range stub {
		out = binary.NativeEndian.AppendUint16(out, ins.Code)
		out = append(out, ins.Jt, ins.Jf)
		out = binary.NativeEndian.AppendUint32(out, ins.K)
	}
	return append(out, prog...), nil
}

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = 8

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}
