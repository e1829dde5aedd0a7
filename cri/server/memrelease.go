package server

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// memReleaseDelay is how long after a large response its memory is handed
// back: long enough for gRPC to have sent it (after the handler returned).
const memReleaseDelay = time.Second

// memReleaser hands the memory the Go runtime holds free back to the OS
// soon after large, short-lived allocations (ExecSync outputs). Without
// it, RSS stays at its peak: an idle daemon runs no GC cycle until the
// runtime forces one (every two minutes), and the background scavenger
// then returns the freed heap only gradually. The release runs once a
// burst of large calls is over (the delay after the last one), so memory
// that calls still in flight hold is not missed; it is a full GC, cheap
// on cubbyd's small heap, and never runs for the small output of a probe.
type memReleaser struct {
	delay time.Duration
	free  func()

	mu    sync.Mutex
	timer *time.Timer
}

func newMemReleaser() *memReleaser {
	return &memReleaser{delay: memReleaseDelay, free: freeOSMemory}
}

// freeOSMemory collects twice before returning the free heap: a sync.Pool
// (gRPC's buffer pool holds the encoded response) keeps what one GC finds
// unused for one more cycle.
func freeOSMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// soon schedules the release for the delay from now, replacing a pending
// one.
func (m *memReleaser) soon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil {
		m.timer = time.AfterFunc(m.delay, m.free)
		return
	}
	m.timer.Reset(m.delay) // reschedules, or schedules again once it ran
}
