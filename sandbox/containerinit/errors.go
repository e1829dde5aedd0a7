package containerinit

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

var (
	// ErrInvalidSpec is returned when the spec handed to Start cannot
	// describe a container (no root, no process, no args, unknown names).
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrExecutableNotFound means the container's command could not be
	// found through the PATH of the container's environment.
	ErrExecutableNotFound = errors.New("executable file not found in $PATH")
	// ErrInitExited means the init stage ended without either reaching
	// execve or reporting an error (it was killed or crashed).
	ErrInitExited = errors.New("container init exited without reporting")
)

// Error kinds carried across the sync socket so that sentinel errors survive
// the process boundary.
const (
	kindExecutableNotFound = "executable-not-found"
	kindInvalidSpec        = "invalid-spec"
)

// InitError is a failure reported by the init stage: the step that failed
// and the child's error text.
type InitError struct {
	Step    string `json:"step"`
	Message string `json:"message"`
	// Kind names a sentinel error the failure matches, if any.
	Kind string `json:"kind,omitempty"`
}

func (e *InitError) Error() string {
	return e.Step + ": " + e.Message
}

// Is lets callers test an InitError against the package's sentinels.
func (e *InitError) Is(target error) bool {
	switch e.Kind {
	case kindExecutableNotFound:
		return target == ErrExecutableNotFound
	case kindInvalidSpec:
		return target == ErrInvalidSpec
	}
	return false
}

func newInitError(step string, err error) *InitError {
	ie := &InitError{Step: step, Message: err.Error()}
	switch {
	case errors.Is(err, ErrExecutableNotFound):
		ie.Kind = kindExecutableNotFound
	case errors.Is(err, ErrInvalidSpec):
		ie.Kind = kindInvalidSpec
	}
	return ie
}

// mountError describes a failed mount(2) with everything needed to debug it.
type mountError struct {
	op     string
	source string
	target string
	fstype string
	flags  uintptr
	data   string
	err    error
}

func (e *mountError) Error() string {
	s := e.op + " " + strconv.Quote(e.target)
	if e.source != "" {
		s += " from " + strconv.Quote(e.source)
	}
	if e.fstype != "" {
		s += " type " + e.fstype
	}
	if e.flags != 0 {
		s += fmt.Sprintf(" flags %#x", e.flags)
	}
	if e.data != "" {
		s += " data " + strconv.Quote(e.data)
	}
	return s + ": " + e.err.Error()
}

func (e *mountError) Unwrap() error { return e.err }

// mount is unix.Mount with a structured error; target is the path used for
// the syscall, name the path shown in errors (the in-container path when the
// syscall goes through a /proc/self/fd magic link).
func mount(source, target, name, fstype string, flags uintptr, data string) error {
	for {
		err := unix.Mount(source, target, fstype, flags, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &mountError{op: "mount", source: source, target: name, fstype: fstype, flags: flags, data: data, err: err}
		}
		return nil
	}
}
