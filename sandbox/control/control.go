// Package control is the protocol between cubbyd and a pod's cubby-pod init:
// the request and response messages sent over the pod's control socket, and
// the files under the pod directory that both sides read (exit records).
//
// One request per connection, JSON encoded:
//
//	cubbyd                         cubby-pod (ctl.sock)
//	  │── Request{Op:"start"} ───────▶│ fork container init, wait for execve
//	  │◀──────── Response{Pid} ───────│
//	  │── Request{Op:"wait"} ────────▶│ blocks until the container exits
//	  │◀──────── Response{Exit} ──────│ (exit also written to exit.json)
//
// The package is linked into cubby-pod: it stays dependency-free.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Ops understood by cubby-pod.
const (
	OpPing     = "ping"     // liveness
	OpStart    = "start"    // start a container from a bundle
	OpKill     = "kill"     // signal a container's init process
	OpWait     = "wait"     // block until a container has exited
	OpShutdown = "shutdown" // kill every container, then exit
	OpReopen   = "reopen"   // reopen a container's log file (after rotation)
	// OpForget drops the pod init's record of an exited container (its
	// removal): a long pod that restarts containers keeps no memory of
	// the ones gone.
	OpForget = "forget"
	// OpExec runs a process in a running container; a session (see Open).
	OpExec = "exec"
	// OpAttach hands out a running container's stdio; a session.
	OpAttach = "attach"
	// OpCloseStdin, sent within an attach session, closes the container's
	// stdin (CRI stdin_once).
	OpCloseStdin = "close-stdin"
)

// Request is one call to cubby-pod.
type Request struct {
	Op string `json:"op"`
	// ID is the container the op applies to.
	ID string `json:"id,omitempty"`
	// Bundle is the directory holding the container's config.json (start).
	Bundle string `json:"bundle,omitempty"`
	// LogPath is the CRI log file of the container (start).
	LogPath string `json:"logPath,omitempty"`
	// LogDir is the pod's log directory (start): LogPath is opened
	// beneath it, through no symlink. "" means LogPath's directory.
	LogDir string `json:"logDir,omitempty"`
	// CgroupProcsFiles are written with the container's pid before it runs (start).
	CgroupProcsFiles []string `json:"cgroupProcsFiles,omitempty"`
	// Signal to send (kill).
	Signal int `json:"signal,omitempty"`
	// Args is the command of an exec.
	Args []string `json:"args,omitempty"`
	// Tty asks for a terminal (exec).
	Tty bool `json:"tty,omitempty"`
	// Stdin, Stdout and Stderr say which streams the caller wants
	// (exec, attach); the others are /dev/null.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
}

// Response answers a Request. Error is set when the op failed.
type Response struct {
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// StartedAt is when a started container's command was exec'd, in Unix
	// nanoseconds: taken by the pod init, so it precedes the exit's reap.
	StartedAt int64 `json:"startedAt,omitempty"`
	Exit      *Exit `json:"exit,omitempty"`
	// Containers is how many container records the pod init holds (ping).
	Containers int `json:"containers,omitempty"`
	// Files name the descriptors passed with the answer of a session op,
	// in order: FileStdin, FileStdout, FileStderr, FileTerminal.
	Files []string `json:"files,omitempty"`
}

// AnnotationStdin in a container's spec asks for a stdin pipe held by the
// pod init (CRI stdin), for attach.
const AnnotationStdin = "dev.cubby.stdin"

// Names of the descriptors a session hands out.
const (
	FileStdin    = "stdin"    // write end: the process's stdin
	FileStdout   = "stdout"   // read end: the process's stdout
	FileStderr   = "stderr"   // read end: the process's stderr
	FileTerminal = "terminal" // a terminal master: stdin, output and resize
)

// Exit is how a container's init process ended.
type Exit struct {
	Pid int `json:"pid"`
	// Code is the exit status, or 128+signal when killed by a signal.
	Code int32 `json:"code"`
	// Signal is the terminating signal, 0 if the process exited.
	Signal int `json:"signal,omitempty"`
	// FinishedAt is the reap time in Unix nanoseconds.
	FinishedAt int64 `json:"finishedAt"`
}

// ErrNotRunning is returned by Call when no cubby-pod answers on the socket.
var ErrNotRunning = errors.New("pod init is not running")

// Layout of a pod directory (under cubbyd's --state).
const (
	SocketName = "ctl.sock"
	// ContainersDir holds one directory per container with its exit record.
	ContainersDir = "containers"
	exitName      = "exit.json"
)

// SocketPath is the control socket of the pod whose directory is podDir.
func SocketPath(podDir string) string { return filepath.Join(podDir, SocketName) }

// PidNamespacePath is the file in a container's bundle that cubby-pod pins
// the container's own pid namespace to when it starts the container, so that
// another container can join it (pid mode TARGET).
func PidNamespacePath(bundle string) string { return filepath.Join(bundle, "pidns") }

// ExitPath is where cubby-pod records the exit of container id.
func ExitPath(podDir, id string) string {
	return filepath.Join(podDir, ContainersDir, id, exitName)
}

// Call sends req to the cubby-pod listening on socket and returns its answer.
// An error in the answer is returned as an error.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	conn, err := Dial(ctx, socket)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("send %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		return Response{}, fmt.Errorf("%s: read answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// WriteExit records e for container id atomically (temp file, fsync, rename).
func WriteExit(podDir, id string, e Exit) error {
	path := ExitPath(podDir, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b, 0o600)
}

// ReadExit returns the recorded exit of container id; ok is false when the
// container has not exited (or its pod directory is gone).
func ReadExit(podDir, id string) (e Exit, ok bool, err error) {
	b, err := os.ReadFile(ExitPath(podDir, id))
	if errors.Is(err, os.ErrNotExist) {
		return Exit{}, false, nil
	}
	if err != nil {
		return Exit{}, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return Exit{}, false, fmt.Errorf("decode exit record of %q: %w", id, err)
	}
	return e, true, nil
}

// WriteFileAtomic writes data to path so that a crash leaves either the old
// or the new content: temp file in the same directory, fsync, rename.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// maxSunPath is the longest path a sockaddr_un holds, less the NUL.
const maxSunPath = 107

// Dial connects to the unix socket at path. Paths longer than a
// sockaddr_un allows (deep state directories, 64-hex ids) are reached
// through an O_PATH descriptor of their directory.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	if len(path) > maxSunPath {
		dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		path = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// Listen listens on the socket SocketName in the current directory, which
// the pod init has made its pod directory: a relative bind has no
// sockaddr_un length limit to hit.
func Listen() (*net.UnixListener, error) {
	_ = os.Remove(SocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketName, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(SocketName, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
