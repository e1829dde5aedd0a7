package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
)

// Exit is how a container's process ended.
type Exit = control.Exit

// ErrPodNotRunning is returned when the pod init of a container is gone.
var ErrPodNotRunning = control.ErrNotRunning

// ContainerDir is the state directory (bundle) of container id.
func (r *Runtime) ContainerDir(id string) string {
	return filepath.Join(r.stateDir, "containers", id)
}

// RootfsPath is where container id's root filesystem is mounted.
func (r *Runtime) RootfsPath(id string) string {
	return filepath.Join(r.ContainerDir(id), "rootfs")
}

// PidNamespacePath is the file that container id's own pid namespace is
// pinned to while it exists; a container with pid mode TARGET joins it.
func (r *Runtime) PidNamespacePath(id string) string {
	return control.PidNamespacePath(r.ContainerDir(id))
}

// unmountFile detaches whatever is mounted on path (a pinned namespace).
// Nothing mounted, or no file, is success.
func unmountFile(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// WriteBundle stores spec as container id's bundle, atomically, with its
// seccomp profile compiled next to it (an invalid profile fails here, at
// create time, wrapping ErrInvalidSeccompProfile).
func (r *Runtime) WriteBundle(id string, spec *specs.Spec) error {
	dir := r.ContainerDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bundle of %q: %w", id, err)
	}
	if err := r.writeSeccompFilter(dir, spec); err != nil {
		return fmt.Errorf("bundle of %q: %w", id, err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec of %q: %w", id, err)
	}
	if err := control.WriteFileAtomic(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("write spec of %q: %w", id, err)
	}
	return nil
}

// ReadBundle returns the spec stored for container id.
func (r *Runtime) ReadBundle(id string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(r.ContainerDir(id), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read spec of %q: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decode spec of %q: %w", id, err)
	}
	return &spec, nil
}

// StartContainer asks pod podID's init to start container id from its
// bundle, writing its output to logPath (opened beneath logDir, the pod's
// log directory, through no symlink), inside the cgroup whose
// cgroup.procs files are given. It returns the container's host pid once the
// container's command has been exec'd, with the time of the exec.
func (r *Runtime) StartContainer(ctx context.Context, podID, id, logDir, logPath string, cgroupProcsFiles []string) (pid int, startedAt time.Time, err error) {
	resp, err := control.Call(ctx, control.SocketPath(r.PodDir(podID)), control.Request{
		Op:               control.OpStart,
		ID:               id,
		Bundle:           r.ContainerDir(id),
		LogPath:          logPath,
		LogDir:           logDir,
		CgroupProcsFiles: cgroupProcsFiles,
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return resp.Pid, time.Unix(0, resp.StartedAt), nil
}

// ReopenContainerLog makes container id's pod init write its log to a new
// file at the container's log path (the old one was rotated away).
func (r *Runtime) ReopenContainerLog(ctx context.Context, podID, id string) error {
	_, err := control.Call(ctx, control.SocketPath(r.PodDir(podID)), control.Request{Op: control.OpReopen, ID: id})
	return err
}

// SignalContainer sends sig to container id's init process.
func (r *Runtime) SignalContainer(ctx context.Context, podID, id string, sig syscall.Signal) error {
	_, err := control.Call(ctx, control.SocketPath(r.PodDir(podID)), control.Request{Op: control.OpKill, ID: id, Signal: int(sig)})
	return err
}

// WaitContainer blocks until container id has exited and returns its exit.
// It fails with ErrPodNotRunning when the pod init is gone; the container
// died with it then, unless ContainerExit has its record.
func (r *Runtime) WaitContainer(ctx context.Context, podID, id string) (Exit, error) {
	resp, err := control.Call(ctx, control.SocketPath(r.PodDir(podID)), control.Request{Op: control.OpWait, ID: id})
	if err != nil {
		return Exit{}, err
	}
	if resp.Exit == nil {
		return Exit{}, errors.New("pod init answered wait without an exit")
	}
	return *resp.Exit, nil
}

// ContainerExit returns container id's recorded exit, if it has exited.
func (r *Runtime) ContainerExit(podID, id string) (Exit, bool, error) {
	return control.ReadExit(r.PodDir(podID), id)
}

// RemoveContainer makes the pod init forget container id (when the pod
// runs) and removes its bundle and exit record. Its rootfs must be
// unmounted. Idempotent.
func (r *Runtime) RemoveContainer(podID, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), forgetTimeout)
	defer cancel()
	// Best effort: a pod init that is gone or going away forgets all its
	// containers anyway, and the record is memory only.
	_, _ = control.Call(ctx, control.SocketPath(r.PodDir(podID)), control.Request{Op: control.OpForget, ID: id})
	if err := os.RemoveAll(filepath.Dir(control.ExitPath(r.PodDir(podID), id))); err != nil {
		return fmt.Errorf("remove exit record of %q: %w", id, err)
	}
	if err := unmountFile(r.PidNamespacePath(id)); err != nil {
		return fmt.Errorf("remove bundle of %q: %w", id, err)
	}
	// RemoveAll crosses mount points: never run it over a mounted rootfs.
	if mounted, err := isMountPoint(r.RootfsPath(id)); err != nil {
		return fmt.Errorf("remove bundle of %q: %w", id, err)
	} else if mounted {
		return fmt.Errorf("remove bundle of %q: rootfs is still mounted", id)
	}
	if err := os.RemoveAll(r.ContainerDir(id)); err != nil {
		return fmt.Errorf("remove bundle of %q: %w", id, err)
	}
	return nil
}

// forgetTimeout bounds the pod init's answer to a forget: a map delete.
const forgetTimeout = 10 * time.Second

// isMountPoint tells whether path is mounted on (its device differs from its
// parent's). A missing path is not a mount point.
func isMountPoint(path string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(path), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}
