package containerinit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompFilterFile is the name, in a container's bundle next to
// config.json, of its compiled seccomp filter (JSON of a SeccompFilter).
// A bundle whose spec has Linux.Seccomp but no such file does not start:
// a container never runs unconfined by accident.
const SeccompFilterFile = "seccomp.json"

// SeccompFilter is a seccomp profile compiled to a classic BPF program
// (cubbyd compiles it with libseccomp at CreateContainer, see package
// sandbox/seccomp), ready for seccomp(2).
type SeccompFilter struct {
	// Flags are SECCOMP_FILTER_FLAG_* for seccomp(SECCOMP_SET_MODE_FILTER).
	Flags uint `json:"flags,omitempty"`
	// Program is the array of struct sock_filter (8 bytes each, in the
	// host's byte order), as seccomp_export_bpf writes it.
	Program []byte `json:"program"`
}

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = 8

// bpfMaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// Validate checks that Program can be a BPF program at all.
func (f *SeccompFilter) Validate() error {
	n := len(f.Program)
	switch {
	case n == 0:
		return errors.New("seccomp filter: empty program")
	case n%sockFilterSize != 0:
		return fmt.Errorf("seccomp filter: program of %d bytes is not a whole number of instructions", n)
	case n/sockFilterSize > bpfMaxInsns:
		return fmt.Errorf("seccomp filter: %d instructions, the kernel takes at most %d", n/sockFilterSize, bpfMaxInsns)
	}
	return nil
}

// instructions decodes Program into the kernel's struct.
func (f *SeccompFilter) instructions() []unix.SockFilter {
	out := make([]unix.SockFilter, len(f.Program)/sockFilterSize)
	for i := range out {
		b := f.Program[i*sockFilterSize:]
		out[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return out
}

// ReadSeccompFilter returns the compiled filter stored in bundle, or nil
// when the bundle has none (the container is unconfined).
func ReadSeccompFilter(bundle string) (*SeccompFilter, error) {
	b, err := os.ReadFile(filepath.Join(bundle, SeccompFilterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seccomp filter: %w", err)
	}
	var f SeccompFilter
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode seccomp filter: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// InstallSeccomp installs f on the calling thread; execve carries it into
// the new program, and every child inherits it. Without no_new_privs the
// caller needs CAP_SYS_ADMIN. It is a pure function of the filter so that
// both the container's init and an exec into the container call it as
// their last step before execve. A nil filter installs nothing.
func InstallSeccomp(f *SeccompFilter) error {
	if f == nil {
		return nil
	}
	if err := f.Validate(); err != nil {
		return err
	}
	insns := f.instructions()
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("install seccomp filter (%d instructions): %w", len(insns), errno)
	}
	return nil
}
