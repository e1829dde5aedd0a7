// Package testnode runs a private cubbyd for the harnesses under hack/
// (`make bench`, `make critest`): its own root, state, cgroup parent, CNI
// bridge and subnet, in a temp directory, and a teardown that removes what
// it leaves on the host: the daemon, the bridge, the host-local IP store of
// its network, its empty cgroups and the temp directory with any mount
// still under it.
//
// cubbyd runs in its own process group, so that a ^C in the terminal
// reaches only the harness's child, which can then clean up while the
// daemon still serves.
package testnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// Options describe the private daemon.
type Options struct {
	Cubbyd       string // cubbyd binary (cubby-pod next to it)
	Bridge       string // CNI bridge of the built-in network, deleted afterwards
	Subnet       string // its pod subnet; must not overlap a host address
	NetworkName  string // its CNI network name
	CgroupParent string // cgroup parent of the pods
	LogLevel     string // cubbyd log level
	// Image is the daemon's [image] config (mirrors of test registries).
	Image framework.ImageConfig
}

// Node is a running private cubbyd.
type Node struct {
	opts Options
	dir  string
	cmd  *exec.Cmd
	done chan error

	// Socket is the CRI socket's path; Endpoint is it as a URL.
	Socket, Endpoint string
	// Log is cubbyd's log file; it stays after Close.
	Log string
}

// Start checks the subnet, makes a temp directory and starts cubbyd in it.
// sigs, when not nil, interrupts the wait for cubbyd to serve. On error
// everything made is removed again.
func Start(ctx context.Context, o Options, sigs <-chan os.Signal) (_ *Node, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root (namespaces, cgroups, CNI)")
	}
	if err := checkSubnet(o.Subnet, o.Bridge); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cubby-testnode-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	n := &Node{opts: o, dir: dir, done: make(chan error, 1)}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	cfg := framework.DaemonConfig{
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		Listen:       filepath.Join(dir, "cubby.sock"),
		CgroupParent: o.CgroupParent,
		LogLevel:     o.LogLevel,
		Image:        o.Image,
		CNI: framework.CNIConfig{
			ConfDir:            filepath.Join(dir, "net.d"), // empty: the built-in bridge
			DefaultBridge:      o.Bridge,
			DefaultSubnet:      o.Subnet,
			DefaultNetworkName: o.NetworkName,
		},
	}
	if err := os.Mkdir(cfg.CNI.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("make cni conf dir: %w", err)
	}
	cfgPath := filepath.Join(dir, "cubbyd.toml")
	if err := cfg.WriteFile(cfgPath); err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "cubby-testnode-cubbyd-*.log")
	if err != nil {
		return nil, fmt.Errorf("make cubbyd log: %w", err)
	}
	defer logf.Close()
	n.Log = logf.Name()
	n.Socket = cfg.Listen
	n.Endpoint = "unix://" + cfg.Listen

	cmd := exec.Command(o.Cubbyd, "--config", cfgPath, "--listen", cfg.Listen, "--root", cfg.Root, "--state", cfg.State)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Cubbyd, err)
	}
	n.cmd = cmd
	go func() { n.done <- cmd.Wait() }()
	if err := n.waitReady(ctx, sigs); err != nil {
		return nil, err
	}
	return n, nil
}

// waitReady polls Version until cubbyd answers.
func (n *Node) waitReady(ctx context.Context, sigs <-chan os.Signal) error {
	conn, err := grpc.NewClient(n.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", n.Socket, err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := rt.Version(cctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-n.done:
			n.done <- err
			return fmt.Errorf("cubbyd exited (log %s): %v", n.Log, err)
		case <-deadline:
			return fmt.Errorf("cubbyd not serving on %s after 30s (log %s)", n.Socket, n.Log)
		case s := <-sigs:
			return fmt.Errorf("interrupted by %v", s)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops cubbyd (SIGTERM, SIGKILL after 30 s) and removes what the
// daemon and its network leave on the host.
func (n *Node) Close() error {
	var errs []error
	if n.cmd != nil {
		errs = append(errs, n.stop())
		n.cmd = nil
	}
	errs = append(errs, n.teardown())
	return errors.Join(errs...)
}

func (n *Node) stop() error {
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("terminate cubbyd %d: %w", n.cmd.Process.Pid, err)
	}
	select {
	case <-n.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("cubbyd %d ignored SIGTERM for 30s: killed", n.cmd.Process.Pid)
	}
}

// teardown removes the bridge, the host-local IP store of the network, the
// cgroup parent (if empty) and the temp dir with any mount still under it.
func (n *Node) teardown() error {
	var errs []error
	if _, err := net.InterfaceByName(n.opts.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", n.opts.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %v: %s", n.opts.Bridge, err, bytes.TrimSpace(out)))
		}
	}
	if err := os.RemoveAll(filepath.Join("/var/lib/cni/networks", n.opts.NetworkName)); err != nil {
		errs = append(errs, fmt.Errorf("remove ip store of %s: %w", n.opts.NetworkName, err))
	}
	errs = append(errs, removeCgroups(n.opts.CgroupParent))
	errs = append(errs, unmountUnder(n.dir))
	if err := os.RemoveAll(n.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", n.dir, err))
	}
	return errors.Join(errs...)
}

// checkSubnet refuses a subnet that a host address other than our bridge
// already uses.
func checkSubnet(subnet, bridge string) error {
	_, want, err := net.ParseCIDR(subnet)
	if err != nil {
		return fmt.Errorf("subnet %q: %w", subnet, err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list host interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		if ifc.Name == bridge {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if ok && (want.Contains(ipn.IP) || ipn.Contains(want.IP)) {
				return fmt.Errorf("subnet %s overlaps %s on %s: pass another subnet", subnet, ipn, ifc.Name)
			}
		}
	}
	return nil
}

// removeCgroups removes the empty cgroup parent from every v1 hierarchy and
// the unified one. A cgroup that still has children or processes stays.
func removeCgroups(parent string) error {
	if parent == "" || parent == "/" {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", parent))
	var errs []error
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	points, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// MountsUnder lists the mount points below dir, deepest first.
func MountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	return points, sc.Err()
}

// Dir is the node's temp directory (root, state, socket, config).
func (n *Node) Dir() string { return n.dir }

// RunChild starts cmd and waits for it. A terminal's ^C reaches the child
// by itself (same process group); SIGTERM arriving on sigs is forwarded.
func RunChild(cmd *exec.Cmd, sigs <-chan os.Signal) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
			}
			return nil
		}
	}
}

// RegisterFlags defines the flags of the node options on fs, with defaults
// from def (bridge, subnet, network name and cgroup parent differ per
// harness so that a bench and a critest run never share them).
func (o *Options) RegisterFlags(fs *flag.FlagSet, def Options) {
	fs.StringVar(&o.Cubbyd, "cubbyd", "bin/cubbyd", "cubbyd binary (cubby-pod next to it)")
	fs.StringVar(&o.Bridge, "bridge", def.Bridge, "CNI bridge of the run, deleted afterwards")
	fs.StringVar(&o.Subnet, "subnet", def.Subnet, "pod subnet of the run")
	fs.StringVar(&o.NetworkName, "network", def.NetworkName, "CNI network name of the run")
	fs.StringVar(&o.CgroupParent, "cgroup-parent", def.CgroupParent, "cgroup parent of the run's pods")
	fs.StringVar(&o.LogLevel, "log-level", "info", "cubbyd log level (debug logs per-step timings)")
}
