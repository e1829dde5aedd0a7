package podinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"cubby/sandbox/crilog"
)

// beneath resolves a path inside the directory it starts from and through
// no symlink at all: a container that can write into its log directory (a
// hostPath of kubelet's log dir) cannot point its log at a host file.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openLog opens a CRI log file for appending, creating it and the
// directories between it and dir, the pod's log directory (kubelet's; made
// if missing). Everything below dir is resolved beneath it without
// following a symlink, and only a regular file with no other link is
// taken: a symlink, a FIFO or a device planted at the log path fails the
// open (and the container start or the log reopen) instead of being
// written through. dir "" (records from before the pod's log directory was
// kept) is the log file's own directory. A container without a log path
// (CRI allows it) has its output drained into /dev/null.
func openLog(dir, path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY|unix.O_CLOEXEC, 0)
	}
	if dir == "" {
		dir = filepath.Dir(path)
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("log path %q is not inside the pod's log directory %q", path, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	parent, err := mkdirBeneath(root, dir, filepath.Dir(rel))
	if err != nil {
		return nil, err
	}
	if parent != root {
		defer unix.Close(parent)
	}
	return openLogFile(parent, path, filepath.Base(rel))
}

// mkdirBeneath makes each directory of rel below root (dir on the host)
// that is missing and returns an O_PATH descriptor of the last one (root
// itself when rel is "."), opened beneath root without following symlinks.
func mkdirBeneath(root int, dir, rel string) (int, error) {
	fd := root
	if rel == "." {
		return fd, nil
	}
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, name)
		if err := unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			closeUnlessRoot(fd, root)
			return -1, &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
		next, err := unix.Openat2(fd, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: beneath,
		})
		if err != nil {
			err = refusal(dir, "a directory", err, isSymlink(fd, name))
			closeUnlessRoot(fd, root)
			return -1, err
		}
		closeUnlessRoot(fd, root)
		fd = next
	}
	return fd, nil
}

func closeUnlessRoot(fd, root int) {
	if fd != root {
		unix.Close(fd)
	}
}

// openLogFile opens (or creates) the log file name in parent for
// appending: never through a symlink, never anything but a regular file
// with a single link (a hard link to a host file is refused too), and
// without blocking on a FIFO.
func openLogFile(parent int, path, name string) (*os.File, error) {
	fd, err := unix.Openat2(parent, name, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Mode:    0o640,
		Resolve: beneath,
	})
	if err != nil {
		return nil, refusal(path, "a regular file", err, isSymlink(parent, name))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		unix.Close(fd)
		return nil, fmt.Errorf("log file %q is not a regular file (mode %#o): refused", path, st.Mode&unix.S_IFMT)
	case st.Nlink > 1:
		unix.Close(fd)
		return nil, fmt.Errorf("log file %q has %d hard links: refused", path, st.Nlink)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// isSymlink says whether name in dir is a symbolic link.
func isSymlink(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// refusal explains a failed open beneath the log directory: ELOOP and
// ENOTDIR there mean a symlink (or something else) sits where want should.
func refusal(path, want string, err error, symlink bool) error {
	switch {
	case symlink, errors.Is(err, unix.ELOOP):
		return fmt.Errorf("log path %q is a symbolic link, not %s: refused (a log is never opened through a symlink)", path, want)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("log path %q is not %s: refused", path, want)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("log path %q leaves the pod's log directory: refused", path)
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
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
	f, err := openLog(c.logDir, c.logPath)
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
