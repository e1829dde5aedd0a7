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
// soon after a large, short-lived allocation (an ExecSync's output).
// Without it, RSS stays at its peak: an idle daemon runs no GC cycle
// until the runtime forces one (every two minutes), and the background
// scavenger then returns the freed heap only gradually. debug.FreeOSMemory
// is a full GC: cheap on cubbyd's small heap, and it runs once per burst
// however many large calls ask for it (never for the small output of a
// probe).
type memReleaser struct {
	delay time.Duration
	free  func()

	mu      sync.Mutex
	pending bool
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

// soon schedules a release after the delay unless one is pending.
func (m *memReleaser) soon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending {
		return
	}
	m.pending = true
	time.AfterFunc(m.delay, func() {
		m.mu.Lock()
		m.pending = false
		m.mu.Unlock()
		m.free()
	})
}
