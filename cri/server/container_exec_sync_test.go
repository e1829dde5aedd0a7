package server

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
)

// TestExecOutputBudget checks that stdout and stderr share one budget,
// that what is over it is dropped but counted, and that the kept bytes
// come back whole and in order across chunk boundaries.
func TestExecOutputBudget(t *testing.T) {
	const limit = 3*execReadChunk + 100
	o := newExecOutput(limit)
	stdout := bytes.Repeat([]byte("0123456789"), (2*execReadChunk+50)/10)
	for b := stdout; len(b) > 0; {
		n := min(len(b), 7000) // reads of odd sizes
		o.keep(&o.stdout, b[:n])
		b = b[n:]
	}
	stderr := bytes.Repeat([]byte("e"), 2*execReadChunk)
	o.keep(&o.stderr, stderr)
	o.keep(&o.stdout, []byte("dropped"))

	read, kept := o.sizes()
	if kept != limit {
		t.Errorf("kept %d bytes, want the budget %d", kept, limit)
	}
	if want := int64(len(stdout) + len(stderr) + len("dropped")); read != want {
		t.Errorf("read %d bytes, want %d", read, want)
	}
	out, errOut := o.stdout.bytes(), o.stderr.bytes()
	if !bytes.Equal(out, stdout) {
		t.Errorf("stdout: %d bytes, not the %d written", len(out), len(stdout))
	}
	if want := stderr[:limit-len(stdout)]; !bytes.Equal(errOut, want) {
		t.Errorf("stderr: %d bytes, want the first %d", len(errOut), len(want))
	}
	for _, c := range [][]byte{out, errOut} {
		if cap(c) != len(c) {
			t.Errorf("result of %d bytes has capacity %d: want exact", len(c), cap(c))
		}
	}
	if b := newExecOutput(10).stdout.bytes(); b != nil {
		t.Errorf("empty output = %q, want nil", b)
	}
}

// TestMemReleaserOncePerBurst checks that many large responses in a burst
// cost one release, the delay after the last of them, and a later burst
// another.
func TestMemReleaserOncePerBurst(t *testing.T) {
	var released atomic.Int32
	m := &memReleaser{delay: 250 * time.Millisecond, free: func() { released.Add(1) }}
	for range 6 {
		m.soon()
		time.Sleep(60 * time.Millisecond) // the burst outlasts one delay
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("%d releases while the burst went on, want none yet", n)
	}
	time.Sleep(800 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("%d releases for one burst, want 1", n)
	}
	m.soon()
	time.Sleep(800 * time.Millisecond)
	if n := released.Load(); n != 2 {
		t.Errorf("%d releases after a second burst, want 2", n)
	}
}
