package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cubby/sandbox/control"
	"cubby/sandbox/keeper"
	"cubby/sandbox/seccomp"
)

// Runtime starts pod inits and containers under one state directory.
type Runtime struct {
	stateDir  string
	podBinary string
	seccomp   *seccomp.Cache
	// keeper is the parent of every pod init, across cubbyd restarts.
	keeper *keeper.Client
}

// New returns a Runtime keeping its runtime state under stateDir and starting
// podBinary (cubby-pod) for every pod.
func New(stateDir, podBinary string) (*Runtime, error) {
	if _, err := os.Stat(podBinary); err != nil {
		return nil, fmt.Errorf("pod init binary: %w", err)
	}
	for _, d := range []string{"pods", "containers"} {
		if err := os.MkdirAll(filepath.Join(stateDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	return &Runtime{
		stateDir:  stateDir,
		podBinary: podBinary,
		seccomp:   seccomp.NewCache(),
		keeper:    keeper.NewClient(stateDir, podBinary),
	}, nil
}

// Close lets the pod init keeper go; it stays while pod inits run.
func (r *Runtime) Close() { r.keeper.Close() }

// KeeperRestarts is how many pod init keepers were started to replace one
// that died while cubbyd ran.
func (r *Runtime) KeeperRestarts() int64 { return r.keeper.Restarts() }

// PodDir is the state directory of pod id.
func (r *Runtime) PodDir(id string) string { return filepath.Join(r.stateDir, "pods", id) }

// pinnedNamespaces are the pod namespaces that may be bind-mounted to
// files (those the pod has of its own).
var pinnedNamespaces = []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace}

// nsProcName maps a namespace type to its name under /proc/<pid>/ns.
func nsProcName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.PIDNamespace:
		return "pid"
	default:
		return string(t)
	}
}

// NamespacePath is the file that pod id's namespace t is pinned to.
func (r *Runtime) NamespacePath(id string, t specs.LinuxNamespaceType) string {
	return filepath.Join(r.PodDir(id), "ns", nsProcName(t))
}

// PodOptions describe a pod init to start.
type PodOptions struct {
	ID string
	// Hostname is set in the pod's new UTS namespace; ignored (the node's
	// stays) when the pod has none, and "" keeps the node's name.
	Hostname string
	// HostNetwork keeps the pod in the node's network and UTS namespaces,
	// HostIPC in its IPC namespace, HostPID in its pid namespace; the
	// pod init is born in a new namespace of every other kind.
	HostNetwork, HostIPC, HostPID bool
	// Sysctls are written by the pod init in its namespaces before it
	// reports ready; keys in dotted or slash form. The caller checks that
	// each belongs to a namespace of the pod's own.
	Sysctls map[string]string
	// CgroupProcsFiles are the cgroup.procs files of the pod init's own
	// (leaf) cgroup.
	CgroupProcsFiles []string
}

// newNamespaces are the namespaces the pod init is born in, in pinning order.
func (o PodOptions) newNamespaces() []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	if !o.HostNetwork {
		out = append(out, specs.NetworkNamespace)
	}
	if !o.HostIPC {
		out = append(out, specs.IPCNamespace)
	}
	if !o.HostNetwork {
		out = append(out, specs.UTSNamespace)
	}
	if !o.HostPID {
		out = append(out, specs.PIDNamespace)
	}
	return out
}

// cloneFlag is the clone flag that makes a new namespace of type t for
// the pod init to be born in. None for the pid namespace: the pod init
// stays in the node's and makes the pod's itself, with a PID 1 that holds
// nothing of the host (see podinit).
func cloneFlag(t specs.LinuxNamespaceType) uintptr {
	switch t {
	case specs.NetworkNamespace:
		return unix.CLONE_NEWNET
	case specs.IPCNamespace:
		return unix.CLONE_NEWIPC
	case specs.UTSNamespace:
		return unix.CLONE_NEWUTS
	}
	return 0
}

// Pod is a started pod init.
type Pod struct {
	Pid int
	// Namespaces maps each pinned namespace to its file.
	Namespaces map[specs.LinuxNamespaceType]string
}

// podStartTimeout bounds the wait for a new pod init to listen.
const podStartTimeout = 10 * time.Second

// StartPod starts the pod init of opts.ID in new net, ipc and uts
// namespaces, with a new pid namespace made by the pod init (less those
// opts keeps the node's), and pins the new ones to files. On error nothing is left running or mounted; the pod directory
// stays for RemovePod.
func (r *Runtime) StartPod(ctx context.Context, opts PodOptions) (Pod, error) {
	dir := r.PodDir(opts.ID)
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o700); err != nil {
		return Pod{}, fmt.Errorf("create pod directory: %w", err)
	}
	child, err := r.spawnPodInit(ctx, opts, dir)
	if err != nil {
		// A pod init that failed after pinning the pod's pid namespace
		// leaves the mount.
		_ = r.ReleaseNamespaces(opts.ID)
		return Pod{}, err
	}
	defer child.Close()
	fail := func(err error) (Pod, error) {
		killChild(child)
		_ = r.ReleaseNamespaces(opts.ID)
		return Pod{}, err
	}
	pod := Pod{Pid: child.Pid, Namespaces: map[specs.LinuxNamespaceType]string{}}
	for _, t := range opts.newNamespaces() {
		path := r.NamespacePath(opts.ID, t)
		pod.Namespaces[t] = path
		if t == specs.PIDNamespace {
			continue // pinned by the pod init before it reported ready
		}
		if err := pinNamespace(child.Pid, nsProcName(t), path); err != nil {
			return fail(fmt.Errorf("pin %s namespace of pod %q: %w", t, opts.ID, err))
		}
	}
	// The keeper reaps a pod init the moment it exits, and its pid may
	// then be reused: the pins are the pod init's only if it is still
	// alive after them.
	if child.Exited() {
		return fail(fmt.Errorf("pod init of %q exited during start (see %s)", opts.ID, filepath.Join(dir, "init.log")))
	}
	return pod, nil
}

// killChild kills a pod init that failed its start and waits for it to
// be gone.
func killChild(child *keeper.Child) {
	_ = child.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	_ = child.Wait(ctx)
}

// spawnPodInit has the keeper start the pod init and waits for it to report
// ready.
func (r *Runtime) spawnPodInit(ctx context.Context, opts PodOptions, dir string) (*keeper.Child, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "init.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open pod init log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()

	args := []string{"cubby-pod", "--id", opts.ID, "--dir", dir, "--ready-fd", "3"}
	var cloneFlags uintptr
	for _, t := range opts.newNamespaces() {
		cloneFlags |= cloneFlag(t)
	}
	// lo of a new network namespace starts down; the node's is not ours.
	if cloneFlags&unix.CLONE_NEWNET != 0 {
		args = append(args, "--loopback")
	}
	if !opts.HostPID {
		args = append(args, "--pidns", r.NamespacePath(opts.ID, specs.PIDNamespace))
	}
	// Never in the node's UTS namespace: that would rename the node.
	if opts.Hostname != "" && cloneFlags&unix.CLONE_NEWUTS != 0 {
		args = append(args, "--hostname", opts.Hostname)
	}
	for _, k := range slices.Sorted(maps.Keys(opts.Sysctls)) {
		args = append(args, "--sysctl", k+"="+opts.Sysctls[k])
	}
	// The keeper forks it in its own session (signals to cubbyd's process
	// group never reach the pod) and joins it to its cgroups first.
	child, err := r.keeper.Spawn(ctx, keeper.Request{
		Args:             args,
		Env:              []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		CloneFlags:       cloneFlags,
		CgroupProcsFiles: opts.CgroupProcsFiles,
	}, []*os.File{devnull, logf, logf, readyW})
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start pod init of %q: %w", opts.ID, err)
	}
	msg, err := readReady(ctx, readyR)
	if err == nil && msg != "ok" {
		err = errors.New(msg)
	}
	if err != nil {
		killChild(child)
		child.Close()
		if out := tail(filepath.Join(dir, "init.log"), 512); out != "" {
			err = fmt.Errorf("%w (pod init said: %s)", err, out)
		}
		return nil, fmt.Errorf("start pod init of %q: %w", opts.ID, err)
	}
	return child, nil
}

// readReady reads the pod init's one-line readiness report.
func readReady(ctx context.Context, r *os.File) (string, error) {
	deadline := time.Now().Add(podStartTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := r.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	if line != "" {
		return line, nil
	}
	if err != nil {
		return "", fmt.Errorf("pod init did not report ready (see init.log): %w", err)
	}
	return "", errors.New("pod init reported nothing")
}

// pinNamespace bind-mounts /proc/<pid>/ns/<name> onto path, so that the
// namespace outlives the process and can be joined by path.
func pinNamespace(pid int, name, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/%s", pid, name)
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s to %s: %w", src, path, err)
	}
	return nil
}

// ReleaseNamespaces unmounts and removes the pod's namespace files.
// Idempotent.
func (r *Runtime) ReleaseNamespaces(id string) error {
	var errs []error
	for _, t := range pinnedNamespaces {
		path := r.NamespacePath(id, t)
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// podStopTimeout bounds a graceful pod init shutdown; killTimeout the wait
// for a SIGKILLed pod init to be gone.
const (
	podStopTimeout = 15 * time.Second
	killTimeout    = 10 * time.Second
)

// StopPod kills every container of pod id, then its pod init (pid, as
// recorded at start). Idempotent: a pod init that is gone is success.
func (r *Runtime) StopPod(ctx context.Context, id string, pid int) error {
	// A graceful shutdown lets the pod init record every container's exit.
	// Whether it answers or not, the kill below makes sure it is gone: a
	// container without a recorded exit died with its pod init.
	shutdownCtx, cancel := context.WithTimeout(ctx, podStopTimeout)
	_, _ = control.Call(shutdownCtx, control.SocketPath(r.PodDir(id)), control.Request{Op: control.OpShutdown})
	cancel()
	if pid <= 0 || !isPodInit(pid, id) {
		return nil
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	killCtx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	for isPodInit(pid, id) {
		select {
		case <-killCtx.Done():
			return fmt.Errorf("pod init %d of %q did not exit after SIGKILL: %w", pid, id, killCtx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// isPodInit tells whether pid is still the (unreaped) pod init of pod id;
// a reused pid belongs to another process and is left alone.
func isPodInit(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return false // gone, or a zombie
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--id" && args[i+1] == id {
			return true
		}
	}
	return false
}

// PodRunning tells whether pod id's init answers on its control socket.
func (r *Runtime) PodRunning(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := control.Call(ctx, control.SocketPath(r.PodDir(id)), control.Request{Op: control.OpPing})
	return err == nil
}

// RemovePod removes everything StartPod made for pod id. The pod must be
// stopped. Idempotent.
func (r *Runtime) RemovePod(id string) error {
	if err := r.ReleaseNamespaces(id); err != nil {
		return fmt.Errorf("remove pod %q: %w", id, err)
	}
	if err := os.RemoveAll(r.PodDir(id)); err != nil {
		return fmt.Errorf("remove pod %q: %w", id, err)
	}
	return nil
}

// PodFilePath is the path of file name in pod id's directory.
func (r *Runtime) PodFilePath(id, name string) string { return filepath.Join(r.PodDir(id), name) }

// WritePodFile writes a file that the pod's containers bind-mount (hosts,
// resolv.conf, hostname) into pod id's directory. It replaces the file by
// rename but does not fsync: the file lives as long as the runtime state
// directory, which a machine crash empties anyway, and pod start waits on it.
func (r *Runtime) WritePodFile(id, name string, data []byte) error {
	if err := os.MkdirAll(r.PodDir(id), 0o700); err != nil {
		return fmt.Errorf("write %s of pod %q: %w", name, id, err)
	}
	path := r.PodFilePath(id, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s of pod %q: %w", name, id, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s of pod %q: %w", name, id, err)
	}
	return nil
}

// tail returns the last n bytes of file, trimmed; "" if unreadable.
func tail(file string, n int64) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, 0)
	}
	b := make([]byte, n)
	m, _ := f.Read(b)
	return strings.TrimSpace(string(b[:m]))
}
