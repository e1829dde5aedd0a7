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
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)
