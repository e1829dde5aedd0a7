package netcni

import "sync"

// podLocks serializes the plugin runs of one pod: the CNI spec forbids
// two operations on one attachment (container id, interface) at once, and
// a plugin that is DELeted twice concurrently can release an address
// another pod already got. Runs for different pods stay parallel.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock
}

type podLock struct {
	mu   sync.Mutex
	refs int // callers holding or waiting for mu
}

// lock takes the lock of pod id and returns its unlock.
func (l *podLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*podLock{}
	}
	pl := l.locks[id]
	if pl == nil {
		pl = &podLock{}
		l.locks[id] = pl
	}
	pl.refs++
	l.mu.Unlock()

	pl.mu.Lock()
	return func() {
		pl.mu.Unlock()
		l.mu.Lock()
		pl.refs--
		if pl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}
