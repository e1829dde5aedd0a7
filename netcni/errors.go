package netcni

import "errors"

var (
	// ErrInvalidArgument reports a PodNetwork or Config that cannot be used.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrNotReady reports that pods cannot be networked yet: no usable
	// network configuration, or a plugin binary it needs is missing.
	ErrNotReady = errors.New("network not ready")
)
