// Package crilog writes container output in the CRI log format that kubelet
// reads back (`kubectl logs`, a termination message taken from the log):
//
//	<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
//
// kubelet joins P (partial) records until the next F (full) record and
// adds a newline after each F. So a line ending in "\n" is one F record
// (without the "\n", and without the "\r" of a "\r\n" ending, as containerd
// does: a terminal's output reads as plain lines); a line longer than
// maxLine is split into P records of maxLine bytes and the rest; and what
// the stream leaves without a newline when it ends (the container exited
// or was killed mid-line) is a P record, so `echo -n DONE` reads back as
// "DONE", not "DONE\n". No byte the container wrote is lost or added.
//
// The writer runs inside cubby-pod, which holds the read ends of the
// containers' stdio pipes, so it must stay small and allocation-light.
package crilog

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"
)

// Stream names as kubelet expects them.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// maxLine is the longest content written as one record, the default of
// kubelet's max_container_log_line_size that containerd and CRI-O apply:
// longer lines are split into P records.
const maxLine = 16 * 1024

// Record tags.
const (
	tagFull    = 'F'
	tagPartial = 'P'
)

// File is a CRI log file shared by a container's streams. Each record is one
// write(2) under a lock, so stdout and stderr records never interleave.
type File struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
}

// NewFile returns a log writing records to w.
func NewFile(w io.Writer) *File {
	return &File{w: w, now: time.Now}
}

// SetWriter swaps the destination, for log reopening after rotation.
func (f *File) SetWriter(w io.Writer) {
	f.mu.Lock()
	f.w = w
	f.mu.Unlock()
}

// Copy reads r until it ends and writes its content as records of stream
// (see the package comment for how it is split). It returns nil at EOF, and
// the read error otherwise (a terminal's master reads EIO once the
// container side is closed), after writing what was left as a P record.
func (f *File) Copy(stream string, r io.Reader) error {
	// One byte more than maxLine for a "\r" whose "\n" is still to come,
	// one more so a read always has room.
	buf := make([]byte, maxLine+2)
	n := 0 // buf[:n] holds content not yet written
	for {
		m, err := r.Read(buf[n:])
		n += m
		n = f.flushLines(stream, buf[:n])
		if err != nil {
			if n > 0 {
				f.record(stream, tagPartial, buf[:n])
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// flushLines writes every complete line of pending and every maxLine piece
// of a line already longer than maxLine, moves what is left to the front
// of pending and returns its length.
func (f *File) flushLines(stream string, pending []byte) int {
	rest := pending
	for {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i >= 0 {
			line = bytes.TrimSuffix(rest[:i], []byte{'\r'})
		}
		switch {
		case i >= 0 && len(line) <= maxLine:
			f.record(stream, tagFull, line)
			rest = rest[i+1:]
		case i >= 0 || overlong(rest):
			f.record(stream, tagPartial, rest[:maxLine])
			rest = rest[maxLine:]
		default:
			return copy(pending, rest)
		}
	}
}

// overlong reports whether the unterminated line b is known to hold more
// than maxLine bytes of content: a "\r" just past maxLine may still be the
// start of a "\r\n" ending.
func overlong(b []byte) bool {
	switch {
	case len(b) <= maxLine:
		return false
	case len(b) == maxLine+1:
		return b[maxLine] != '\r'
	default:
		return true
	}
}

func (f *File) record(stream string, tag byte, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.now().AppendFormat(f.buf[:0], time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, content...)
	b = append(b, '\n')
	f.buf = b
	// A failed write (full disk, log removed) drops the record: the container
	// must never block on its log.
	_, _ = f.w.Write(b)
}
