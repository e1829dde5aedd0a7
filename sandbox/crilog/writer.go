// Package crilog writes container output in the CRI log format that kubelet
// reads back (`kubectl logs`):
//
//	<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
//
// F marks the last piece of a line, P a partial piece of a line longer than
// the buffer. The writer runs inside cubby-pod, which holds the read ends of
// the containers' stdio pipes, so it must stay small and allocation-light.
package crilog

import (
	"bufio"
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

// maxLine is the longest piece written as one record; longer lines are split
// into P records, as containerd does.
const maxLine = 16 * 1024

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

// Copy reads r until EOF and writes every line as a record of stream.
// It returns nil at EOF.
func (f *File) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			f.record(stream, true, line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			f.record(stream, false, line)
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				f.record(stream, true, line)
			}
			return nil
		default:
			if len(line) > 0 {
				f.record(stream, true, line)
			}
			return err
		}
	}
}

func (f *File) record(stream string, full bool, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tag := byte('P')
	if full {
		tag = 'F'
	}
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
