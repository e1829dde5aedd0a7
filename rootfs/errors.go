package rootfs

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no image, or no snapshot, matches the reference or ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: a malformed argument, such as a container ID that
	// is not a valid directory name.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidReference: an image reference that cannot be parsed.
	// errors.Is(err, ErrInvalidArgument) also holds for it.
	ErrInvalidReference = fmt.Errorf("%w: invalid image reference", ErrInvalidArgument)
	// ErrAlreadyExists: a snapshot exists for the container with another
	// image, or something else is mounted at the target.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInUse: the snapshot is still mounted.
	ErrInUse = errors.New("in use")
	// ErrDigestMismatch: content from a registry does not match its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnauthenticated: the registry rejected the credentials (or asked
	// for some and none were given). The message names the registry.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the registry accepted the credentials but
	// refused access to the repository.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNoProgress: a registry sent no bytes for longer than
	// Config.NoProgressTimeout.
	ErrNoProgress = errors.New("registry made no progress")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)
