package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"cubby/cgroupmgr"
	"cubby/rootfs"
	"cubby/sandbox"
)

// Sentinel errors of the CRI layer; toStatus maps them to gRPC codes.
var (
	errNotFound           = errors.New("not found")
	errInvalidArgument    = errors.New("invalid argument")
	errAlreadyExists      = errors.New("already exists")
	errFailedPrecondition = errors.New("failed precondition")
	errResourceExhausted  = errors.New("resource exhausted")
)

// toStatus maps err to a gRPC status error, keeping its message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, rootfs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, errInvalidArgument), errors.Is(err, rootfs.ErrInvalidReference), errors.Is(err, rootfs.ErrInvalidArgument),
		errors.Is(err, sandbox.ErrInvalidSeccompProfile),
		errors.Is(err, cgroupmgr.ErrInvalidArgument), errors.Is(err, cgroupmgr.ErrInvalidPath):
		code = codes.InvalidArgument
	case errors.Is(err, rootfs.ErrUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, rootfs.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, rootfs.ErrNoProgress):
		code = codes.Unavailable
	case errors.Is(err, errAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, errFailedPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, errResourceExhausted):
		code = codes.ResourceExhausted
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}
