package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPullMetrics(t *testing.T) {
	m, err := newPullMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.PullStarted("a")
	m.PullStarted("b")
	m.PullBytes(100)
	m.PullBytes(50)
	if got := testutil.ToFloat64(m.inFlight); got != 2 {
		t.Errorf("in flight = %v; want 2", got)
	}
	if got := testutil.ToFloat64(m.bytesInFlight); got != 150 {
		t.Errorf("bytes in flight = %v; want 150", got)
	}
	m.PullDone("a", nil, time.Second, 100)
	m.PullDone("b", fmt.Errorf("pull: %w", context.DeadlineExceeded), time.Second, 50)
	m.PullStarted("c")
	m.PullDone("c", errors.New("not found"), time.Millisecond, 0)
	for result, want := range map[string]float64{"success": 1, "canceled": 1, "failure": 1} {
		if got := testutil.ToFloat64(m.pulls.WithLabelValues(result)); got != want {
			t.Errorf("pulls{result=%q} = %v; want %v", result, got, want)
		}
	}
	if got := testutil.ToFloat64(m.bytes); got != 150 {
		t.Errorf("bytes total = %v; want 150", got)
	}
	if a, b := testutil.ToFloat64(m.inFlight), testutil.ToFloat64(m.bytesInFlight); a != 0 || b != 0 {
		t.Errorf("after all pulls ended: in flight %v, bytes in flight %v; want 0", a, b)
	}
	if got := testutil.CollectAndCount(m.duration); got != 1 {
		t.Errorf("duration histogram series = %d", got)
	}
}
