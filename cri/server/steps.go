package server

import (
	"fmt"
	"strings"
	"time"
)

// stepTimer records how long each named step of an operation took, for the
// debug log (where a slow pod start spends its time) and, when observe is
// set, for metrics.
type stepTimer struct {
	last    time.Time
	steps   []string
	observe func(step string, took time.Duration)
}

// newStepTimer starts timing the first step; observe (nil: none) is told
// of each step as it ends.
func newStepTimer(observe func(step string, took time.Duration)) *stepTimer {
	return &stepTimer{last: time.Now(), observe: observe}
}

// done ends the current step.
func (t *stepTimer) done(name string) {
	now := time.Now()
	took := now.Sub(t.last)
	t.steps = append(t.steps, fmt.Sprintf("%s=%s", name, took.Round(10*time.Microsecond)))
	t.last = now
	if t.observe != nil {
		t.observe(name, took)
	}
}

// String lists the steps in order, for a log value.
func (t *stepTimer) String() string { return strings.Join(t.steps, " ") }
