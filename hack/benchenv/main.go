// Command benchenv is the environment of `make bench`: it serves the busybox
// test image on a loopback registry, starts a private cubbyd on a
// bench-only CNI bridge and subnet with its own root, state and cgroup
// parent, runs `cubby bench` against it with the arguments after "--", and
// tears all of it down again: the daemon, the bridge, the host-local IP
// store of the bench network, the empty bench cgroups and the temp dir.
//
// cubbyd runs in its own process group so that a ^C in the terminal reaches
// only the bench, which then removes its pods while the daemon still serves.
package main

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
	"os/signal"
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
	"cubby/critest/testimage"
)

// options are benchenv's flags.
type options struct {
	cubbyd, cubby, busybox  string
	bridge, subnet, netName string
	cgroupParent            string
	logLevel                string
	benchArgs               []string
}

func main() {
	var o options
	flag.StringVar(&o.cubbyd, "cubbyd", "bin/cubbyd", "cubbyd binary (cubby-pod next to it)")
	flag.StringVar(&o.cubby, "cubby", "bin/cubby", "cubby CLI binary")
	flag.StringVar(&o.busybox, "busybox", testimage.DefaultBusybox, "static busybox the test image is built from")
	flag.StringVar(&o.bridge, "bridge", "cbbench0", "bench-only CNI bridge, deleted afterwards")
	flag.StringVar(&o.subnet, "subnet", "10.254.0.0/16", "bench-only pod subnet")
	flag.StringVar(&o.netName, "network", "cubby-bench", "bench-only CNI network name")
	flag.StringVar(&o.cgroupParent, "cgroup-parent", "/cubby-bench", "cgroup parent of the bench pods")
	flag.StringVar(&o.logLevel, "log-level", "info", "cubbyd log level (debug logs per-step pod start timings)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchenv [flags] [-- cubby bench flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.benchArgs = flag.Args()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "benchenv: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (namespaces, cgroups, CNI)")
	}
	if err := checkSubnet(o.subnet, o.bridge); err != nil {
		return err
	}
	// Catch signals for the whole run: the bench child gets ^C from the
	// terminal itself; SIGTERM sent to us alone is forwarded to it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	dir, err := os.MkdirTemp("", "cubby-benchenv-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer func() { err = errors.Join(err, o.teardown(dir)) }()

	img, err := testimage.Build(o.busybox)
	if err != nil {
		return fmt.Errorf("build test image: %w", err)
	}
	ctx := context.Background()
	reg, err := testimage.Serve(ctx, img)
	if err != nil {
		return fmt.Errorf("serve test image: %w", err)
	}
	defer func() { err = errors.Join(err, reg.Close()) }()

	d, err := o.startDaemon(ctx, dir, sigs)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.stop()) }()

	args := append([]string{"bench", "--endpoint", "unix://" + d.sock, "--image", reg.Ref}, o.benchArgs...)
	fmt.Fprintf(os.Stderr, "benchenv: %s %s (cubbyd log %s)\n", o.cubby, strings.Join(args, " "), d.log)
	cmd := exec.Command(o.cubby, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.cubby, err)
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
				return fmt.Errorf("cubby bench: %w", err)
			}
			return nil
		}
	}
}

// checkSubnet refuses a subnet that a host address other than our bridge
// already uses.
func checkSubnet(subnet, bridge string) error {
	_, want, err := net.ParseCIDR(subnet)
	if err != nil {
		return fmt.Errorf("bench subnet %q: %w", subnet, err)
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
				return fmt.Errorf("bench subnet %s overlaps %s on %s: pass --subnet", subnet, ipn, ifc.Name)
			}
		}
	}
	return nil
}

// daemon is the private cubbyd.
type daemon struct {
	cmd  *exec.Cmd
	sock string
	log  string
	done chan error
}

func (o options) startDaemon(ctx context.Context, dir string, sigs <-chan os.Signal) (*daemon, error) {
	// The same config type the e2e suite writes for its private daemons.
	cfg := framework.DaemonConfig{
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		Listen:       filepath.Join(dir, "cubby.sock"),
		CgroupParent: o.cgroupParent,
		LogLevel:     o.logLevel,
		CNI: framework.CNIConfig{
			ConfDir:            filepath.Join(dir, "net.d"), // empty: the built-in bridge
			DefaultBridge:      o.bridge,
			DefaultSubnet:      o.subnet,
			DefaultNetworkName: o.netName,
		},
	}
	if err := os.Mkdir(cfg.CNI.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("make cni conf dir: %w", err)
	}
	cfgPath := filepath.Join(dir, "cubbyd.toml")
	if err := cfg.WriteFile(cfgPath); err != nil {
		return nil, err
	}
	// The log stays after the run for per-call server timings.
	logf, err := os.CreateTemp("", "cubby-bench-cubbyd-*.log")
	if err != nil {
		return nil, fmt.Errorf("make cubbyd log: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(o.cubbyd, "--config", cfgPath, "--listen", cfg.Listen, "--root", cfg.Root, "--state", cfg.State)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.cubbyd, err)
	}
	d := &daemon{cmd: cmd, sock: cfg.Listen, log: logf.Name(), done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	if err := d.waitReady(ctx, sigs); err != nil {
		return nil, errors.Join(err, d.stop())
	}
	return d, nil
}

// waitReady polls Version until cubbyd answers.
func (d *daemon) waitReady(ctx context.Context, sigs <-chan os.Signal) error {
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", d.sock, err)
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
		case err := <-d.done:
			d.done <- err
			return fmt.Errorf("cubbyd exited (log %s): %v", d.log, err)
		case <-deadline:
			return fmt.Errorf("cubbyd not serving on %s after 30s (log %s)", d.sock, d.log)
		case s := <-sigs:
			return fmt.Errorf("interrupted by %v", s)
		case <-tick.C:
		}
	}
}

// stop terminates cubbyd and waits for it; after 30 s it kills it.
func (d *daemon) stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("terminate cubbyd %d: %w", d.cmd.Process.Pid, err)
	}
	select {
	case <-d.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("cubbyd %d ignored SIGTERM for 30s: killed", d.cmd.Process.Pid)
	}
}

// teardown removes what the bench network and daemon leave on the host: the
// bridge, the host-local IP store of the bench network, the bench cgroup
// parent (if empty) and the temp dir with any mount still under it.
func (o options) teardown(dir string) error {
	var errs []error
	if _, err := net.InterfaceByName(o.bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", o.bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %v: %s", o.bridge, err, bytes.TrimSpace(out)))
		}
	}
	if err := os.RemoveAll(filepath.Join("/var/lib/cni/networks", o.netName)); err != nil {
		errs = append(errs, fmt.Errorf("remove ip store of %s: %w", o.netName, err))
	}
	errs = append(errs, removeCgroups(o.cgroupParent))
	errs = append(errs, unmountUnder(dir))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
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
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
