package server

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestEventsSlowSubscriber checks that a subscriber that does not read is
// dropped once its buffer is full, without blocking the publisher or the
// other subscribers.
func TestEventsSlowSubscriber(t *testing.T) {
	var e events
	slow := e.subscribe()
	fast := e.subscribe()
	got := 0
	for i := 0; i < eventBuffer+10; i++ {
		e.publish(&runtimeapi.ContainerEventResponse{ContainerId: "c"})
		// The fast one keeps up.
		<-fast.ch
		got++
	}
	select {
	case <-slow.dropped:
	default:
		t.Fatalf("a subscriber %d events behind was not dropped", eventBuffer+10)
	}
	if got != eventBuffer+10 {
		t.Errorf("the reading subscriber got %d events, want %d", got, eventBuffer+10)
	}
	if len(slow.ch) != eventBuffer {
		t.Errorf("the dropped subscriber holds %d events, want the %d before it fell behind", len(slow.ch), eventBuffer)
	}
	e.unsubscribe(slow) // after being dropped: harmless
	e.unsubscribe(fast)
	if e.active() {
		t.Errorf("events still active after every subscriber left")
	}
}
