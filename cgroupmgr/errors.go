package cgroupmgr

import "errors"

var (
	// ErrNotFound: the cgroup does not exist on any hierarchy.
	ErrNotFound = errors.New("cgroup not found")
	// ErrInvalidPath: the cgroup path is not a clean absolute path below the
	// hierarchy root.
	ErrInvalidPath = errors.New("invalid cgroup path")
	// ErrInvalidArgument: the resources cannot be applied as asked, for
	// example unified (cgroup v2) keys on a cgroup v1 host.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnsupported: the host has no usable cgroup hierarchy.
	ErrUnsupported = errors.New("cgroups unsupported")
	// ErrBusy: processes were still in the cgroup when Delete gave up
	// waiting for them to die.
	ErrBusy = errors.New("cgroup still has processes")
)
