package server

import (
	"fmt"
	"strings"
	"time"
)

// stepTimer records how long each named step of an operation took, for the
// debug log: where a slow pod start spends its time.
type stepTimer struct {
	last  time.Time
	steps []string
}

func newStepTimer() *stepTimer { return &stepTimer{last: time.Now()} }

// done ends the current step.
func (t *stepTimer) done(name string) {
	now := time.Now()
	t.steps = append(t.steps, fmt.Sprintf("%s=%s", name, now.Sub(t.last).Round(10*time.Microsecond)))
	t.last = now
}

// String lists the steps in order, for a log value.
func (t *stepTimer) String() string { return strings.Join(t.steps, " ") }
