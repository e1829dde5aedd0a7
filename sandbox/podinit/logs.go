package podinit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"cubby/sandbox/crilog"
)

// openLog opens a CRI log file for appending, creating it and its
// directory if needed. A container without a log path (CRI allows it)
// has its output drained into /dev/null.
func openLog(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY|unix.O_CLOEXEC, 0)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o640)
}

// reopen points container id's log at a new file at its log path: kubelet
// renames the file to rotate it, then asks for the reopen.
func (s *server) reopen(id string) error {
	s.mu.Lock()
	c, ok := s.containers[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("container %q not found in pod", id)
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if c.log == nil {
		return fmt.Errorf("container %q is not running", id)
	}
	f, err := openLog(c.logPath)
	if err != nil {
		return fmt.Errorf("reopen log of %q: %w", id, err)
	}
	c.logs.SetWriter(f)
	c.log.Close()
	c.log = f
	return nil
}

// copyLog copies a container's output stream r into its CRI log, and
// every chunk as it arrives to tee (the attached clients).
func copyLog(wg *sync.WaitGroup, lf *crilog.File, stream string, r *os.File, tee io.Writer) {
	defer wg.Done()
	defer r.Close()
	_ = lf.Copy(stream, io.TeeReader(r, tee))
}
