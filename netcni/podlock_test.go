package netcni

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPodLocksSerializeOnePod(t *testing.T) {
	var l podLocks
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := l.lock("pod-a")
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("%d overlapping holders of one pod's lock", overlaps.Load())
	}
	if len(l.locks) != 0 {
		t.Errorf("%d locks left after every holder returned", len(l.locks))
	}
}

func TestPodLocksLeaveOtherPodsParallel(t *testing.T) {
	var l podLocks
	unlockA := l.lock("pod-a")
	defer unlockA()
	done := make(chan struct{})
	go func() {
		l.lock("pod-b")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pod-b waited on pod-a's lock")
	}
}
