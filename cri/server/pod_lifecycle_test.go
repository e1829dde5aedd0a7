package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestJoinStopSharesOneRun(t *testing.T) {
	l := newPodLifecycle()
	var runs atomic.Int32
	release := make(chan struct{})
	wantErr := errors.New("stop failed")
	stop := func() error {
		runs.Add(1)
		<-release
		return wantErr
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		errs[0] = l.joinStop(context.Background(), stop)
	}()
	<-started
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < len(errs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.joinStop(context.Background(), stop)
		}()
	}
	time.Sleep(20 * time.Millisecond) // the joiners are waiting on the flight
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("stop ran %d times for concurrent callers, want 1", n)
	}
	for i, err := range errs {
		if !errors.Is(err, wantErr) {
			t.Errorf("caller %d got %v, want the flight's error", i, err)
		}
	}
	// A stop after the flight ended runs again.
	if err := l.joinStop(context.Background(), func() error { runs.Add(1); return nil }); err != nil || runs.Load() != 2 {
		t.Errorf("a later stop: err %v, runs %d; want a new run", err, runs.Load())
	}
}

func TestLifecycleAfterRemoveDoesNothing(t *testing.T) {
	l := newPodLifecycle()
	if err := l.locked(context.Background(), func() error { l.markRemoved(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.joinStop(context.Background(), func() error { t.Error("stop ran on a removed pod"); return nil }); err != nil {
		t.Errorf("stop of a removed pod: %v, want success", err)
	}
}

func TestLifecycleWaiterGivesUpWithItsContext(t *testing.T) {
	l := newPodLifecycle()
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer l.release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.locked(ctx, func() error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a held lock: %v, want DeadlineExceeded", err)
	}
}
