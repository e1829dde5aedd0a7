package server

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// cleanupTimeout bounds the undo of a failed RunPodSandbox/CreateContainer.
// It runs under its own context: kubelet giving up on the call must not
// abort the cleanup halfway.
const cleanupTimeout = time.Minute

// undoStack is a LIFO list of described cleanup steps for a multi-step
// operation; each step that made something pushes its undo.
type undoStack struct {
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
}

func (u *undoStack) push(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

// run undoes every step, last first, and returns what could not be undone.
func (u *undoStack) run() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", u.steps[i].what, err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}
