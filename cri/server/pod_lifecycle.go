package server

import (
	"context"
	"sync"
)

// podLifecycle serializes what changes a pod as a whole — stop and remove
// — so that one pod has one lifecycle operation at a time (CNI forbids two
// DELs of one attachment at once), and joins concurrent stops into one.
//
//	StopPodSandbox ──▶ stop flight (one per pod at a time) ──┐
//	StopPodSandbox ──▶ joins the flight, returns its result   ├─▶ lock ──▶ stopPodLocked
//	RemovePodSandbox ─────────────────────────────────────────┘   lock ──▶ stop + remove
//
// It is not the pod's status lock: List and Status calls never wait on it.
type podLifecycle struct {
	lock chan struct{} // a mutex whose waiters can give up with their context

	mu      sync.Mutex
	stop    *flight // the stop in progress, if any
	removed bool    // set under lock once the pod is gone from store and memory
}

// flight is one run of an operation that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error
}

func newPodLifecycle() *podLifecycle {
	return &podLifecycle{lock: make(chan struct{}, 1)}
}

// acquire takes the pod's lifecycle lock, or gives up when ctx ends.
func (l *podLifecycle) acquire(ctx context.Context) error {
	select {
	case l.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *podLifecycle) release() { <-l.lock }

// isRemoved tells, under the lock, that the pod no longer exists: an
// operation that waited for a remove must not write its record again.
func (l *podLifecycle) isRemoved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.removed
}

func (l *podLifecycle) markRemoved() {
	l.mu.Lock()
	l.removed = true
	l.mu.Unlock()
}

// joinStop runs stop under the lifecycle lock, unless a stop of the pod is
// already in flight: then it waits for that one and returns its result.
// A caller whose context ends stops waiting; the flight goes on for the
// others.
func (l *podLifecycle) joinStop(ctx context.Context, stop func() error) error {
	l.mu.Lock()
	f := l.stop
	leader := f == nil
	if leader {
		f = &flight{done: make(chan struct{})}
		l.stop = f
	}
	l.mu.Unlock()
	if !leader {
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.err = l.locked(ctx, stop)
	l.mu.Lock()
	l.stop = nil
	l.mu.Unlock()
	close(f.done)
	return f.err
}

// locked runs fn holding the lifecycle lock; on a removed pod it does
// nothing and succeeds (stop and remove of what is gone succeed).
func (l *podLifecycle) locked(ctx context.Context, fn func() error) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	if l.isRemoved() {
		return nil
	}
	return fn()
}
