// Command critestenv is `make critest`: it runs the upstream cri-tools
// critest (built from hack/critest) against a private cubbyd, offline.
//
// It builds stand-ins for every image critest pulls (images.go) from
// Debian's busybox-static, a few Debian binaries with their libraries and
// the static stand-in program (standin/), serves them on a loopback
// registry, and starts cubbyd (hack/testnode) with that registry as the
// only mirror of registry.k8s.io, k8s.gcr.io and gcr.io. After critest it
// compares the outcome with the committed ratchet list of specs that must
// pass (ratchet.go), prints the counts, and checks that nothing was left
// behind: pods, mounts, veths on the test bridge, per-pod NAT rules,
// cgroups, shm segments.
//
// The exit status is non-zero when a listed spec did not pass, something
// leaked, or the environment could not be set up; specs outside the list
// may fail.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
	"cubby/hack/testnode"
)

type options struct {
	node         testnode.Options
	critest      string
	standin      string
	busybox      string
	ratchet      string
	report       string
	writeRatchet bool
	verbose      bool
	critestArgs  []string
}

func main() {
	var o options
	o.node.RegisterFlags(flag.CommandLine, testnode.Options{
		Bridge: "cbcrit0", Subnet: "10.253.0.0/16", NetworkName: "cubby-critest", CgroupParent: "/cubby-critest",
	})
	flag.StringVar(&o.critest, "critest", "bin/critest", "critest binary (hack/critest)")
	flag.StringVar(&o.standin, "standin", "bin/critest-standin", "static stand-in program for the web server and nonewprivs images")
	flag.StringVar(&o.busybox, "busybox", defaultBusybox(), "busybox the images are built from")
	flag.StringVar(&o.ratchet, "ratchet", "hack/critest/passing.txt", "list of the specs that must pass")
	flag.StringVar(&o.report, "report", "", "keep ginkgo's JSON report here (default: a temp file)")
	flag.BoolVar(&o.writeRatchet, "write-ratchet", false, "add the specs that passed to the ratchet list")
	flag.BoolVar(&o.verbose, "v", false, "print critest's own output (default: to a log file, path printed)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: critestenv [flags] [-- critest flags, e.g. -ginkgo.focus=Streaming]")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.critestArgs = flag.Args()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "critestenv: %v\n", err)
		os.Exit(1)
	}
}

// lockPath serializes critest runs on one machine: critest's port specs
// use fixed host ports (12000-12003), so two runs at once would fail each
// other.
const lockPath = "/run/lock/cubby-critest.lock"

func run(o options) (err error) {
	unlock, err := lockMachine(lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx := context.Background()

	ratchet, err := readRatchet(o.ratchet)
	if err != nil {
		return err
	}
	builder, err := newImageBuilder(o.busybox, o.standin)
	if err != nil {
		return err
	}
	reg, err := testimage.Serve(ctx, builder.base)
	if err != nil {
		return fmt.Errorf("serve test images: %w", err)
	}
	defer func() { err = errors.Join(err, reg.Close()) }()
	if err := pushStandins(ctx, reg, builder); err != nil {
		return err
	}
	o.node.Image.Registries = map[string]framework.RegistryConfig{}
	for _, h := range upstreamHosts {
		o.node.Image.Registries[h] = framework.RegistryConfig{Mirrors: []string{"http://" + reg.Host}, SkipUpstream: true}
	}

	shmBefore, err := shmSegments()
	if err != nil {
		return err
	}
	node, err := testnode.Start(ctx, o.node, sigs)
	if err != nil {
		return err
	}
	leaks := &leakCheck{}
	defer func() {
		leaks.pods(node.Endpoint)
		leaks.vethsOn(o.node.Bridge)
		leaks.natRules(o.node.NetworkName)
		cerr := node.Close()
		leaks.shm(shmBefore)
		if cerr != nil {
			leaks.add("%v", cerr)
		}
		err = errors.Join(err, leaks.err())
	}()

	report := o.report
	if report == "" {
		f, err := os.CreateTemp("", "critest-report-*.json")
		if err != nil {
			return err
		}
		f.Close()
		report = f.Name()
		defer os.Remove(report)
	}
	workDir, err := os.MkdirTemp("", "critest-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(workDir)

	critest, err := filepath.Abs(o.critest)
	if err != nil {
		return err
	}
	args := append([]string{
		"-runtime-endpoint", node.Endpoint,
		"-image-endpoint", node.Endpoint,
		"-ginkgo.no-color",
		"-ginkgo.json-report", report,
	}, o.critestArgs...)
	cmd := exec.Command(critest, args...)
	cmd.Dir = workDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	output := "stdout"
	if !o.verbose {
		// critest's own report is long (a timeline per failed spec, and a
		// go test FAIL line for any failure): keep it in a file.
		logf, err := os.CreateTemp("", "critest-output-*.log")
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		output = logf.Name()
	}
	fmt.Fprintf(os.Stderr, "critestenv: %s %s\n  critest output: %s\n  cubbyd log: %s\n", o.critest, strings.Join(args, " "), output, node.Log)
	start := time.Now()
	// critest exits non-zero when any spec fails; the ratchet decides.
	runErr := testnode.RunChild(cmd, sigs)

	f, err := os.Open(report)
	if err != nil {
		return fmt.Errorf("critest wrote no report (%v): %w", runErr, err)
	}
	results, err := readReport(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("critest ran no spec (%v)", runErr)
	}
	v := judge(results, ratchet, len(o.critestArgs) > 0)
	printVerdict(results, v, len(ratchet), time.Since(start))
	if o.writeRatchet {
		if err := writeRatchet(o.ratchet, results); err != nil {
			return err
		}
		fmt.Printf("critest: wrote %s\n", o.ratchet)
		return nil
	}
	if !v.ok() {
		return fmt.Errorf("%d ratcheted specs did not pass and %d are missing (cubbyd log %s)", len(v.regressed), len(v.missing), node.Log)
	}
	return nil
}

func printVerdict(results []specResult, v verdict, listed int, took time.Duration) {
	fmt.Println()
	fmt.Printf("critest: %d specs in %s\n", len(results), took.Round(time.Second))
	for _, r := range v.regressed {
		fmt.Printf("critest: REGRESSED (%s): %s\n", r.State, r.Name)
		if msg := strings.TrimSpace(r.Failure); msg != "" {
			fmt.Printf("    %s\n", strings.ReplaceAll(firstLines(msg, 6), "\n", "\n    "))
		}
	}
	for _, n := range v.missing {
		fmt.Printf("critest: MISSING from the run: %s\n", n)
	}
	for _, n := range v.newlyPassing {
		fmt.Printf("critest: passes, not in the ratchet yet: %s\n", n)
	}
	fmt.Printf("critest: ratchet: %d of %d listed specs passed\n", listed-len(v.regressed)-len(v.missing), listed)
	fmt.Printf("critest: %s\n", tally(results))
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// shellBusybox is Debian's dynamically linked busybox (package busybox,
// unpacked by hack/install-deps.sh: it conflicts with busybox-static). Its
// shell runs commands from PATH like the upstream busybox images' shell;
// busybox-static's runs applets in-process even where the image's file is
// masked, which critest's MaskedPaths spec detects.
const shellBusybox = "/var/cache/cubby/busybox/busybox"

func defaultBusybox() string {
	if _, err := os.Stat(shellBusybox); err == nil {
		return shellBusybox
	}
	return testimage.DefaultBusybox
}

// lockMachine takes an exclusive lock on path, waiting for the holder.
func lockMachine(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock critest runs: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock critest runs: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		fmt.Fprintf(os.Stderr, "critestenv: waiting for another critest run on this machine (%s)\n", path)
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock critest runs: %w", err)
	}
	return func() { f.Close() }, nil
}

// leakCheck collects what a run left behind.
type leakCheck struct{ found []string }

func (l *leakCheck) add(format string, args ...any) {
	l.found = append(l.found, fmt.Sprintf(format, args...))
}

func (l *leakCheck) err() error {
	if len(l.found) == 0 {
		return nil
	}
	return fmt.Errorf("leaks after critest:\n  %s", strings.Join(l.found, "\n  "))
}

// pods reports (and removes) pods critest left in the daemon.
func (l *leakCheck) pods(endpoint string) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		l.add("connect to cubbyd: %v", err)
		return
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		l.add("list pods: %v", err)
		return
	}
	for _, p := range resp.GetItems() {
		l.add("pod %s (%s) still exists", p.GetId(), p.GetMetadata().GetName())
		_, _ = rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()})
		_, _ = rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()})
	}
}

// natRules reports and removes per-pod NAT rules of the run's network.
func (l *leakCheck) natRules(network string) {
	rules, err := framework.RemoveNATRules(network)
	for _, r := range rules {
		l.add("nat rule %s", r)
	}
	if err != nil {
		l.add("%v", err)
	}
}

// vethsOn reports interfaces still attached to the run's bridge.
func (l *leakCheck) vethsOn(bridge string) {
	links, _ := filepath.Glob(filepath.Join("/sys/class/net", bridge, "brif", "*"))
	for _, link := range links {
		l.add("interface %s still on bridge %s", filepath.Base(link), bridge)
	}
}

// critestSegmentSize is the size of the shm segment that critest's HostIpc
// specs create on the host with `ipcmk -M 1048576` and never remove.
const critestSegmentSize = "1048576"

// shm removes the segments critest's HostIpc specs leave on the host and
// reports any other System V shm segment that appeared during the run.
func (l *leakCheck) shm(before []shmSegment) {
	after, err := shmSegments()
	if err != nil {
		l.add("%v", err)
		return
	}
	for _, s := range after {
		if slices.ContainsFunc(before, func(b shmSegment) bool { return b.id == s.id && b.ctim == s.ctim }) {
			continue
		}
		if s.size != critestSegmentSize || s.attached != "0" {
			l.add("shm segment %d (%s bytes) appeared during the run", s.id, s.size)
			continue
		}
		if _, err := unix.SysvShmCtl(s.id, unix.IPC_RMID, nil); err != nil {
			l.add("remove critest's shm segment %d: %v", s.id, err)
		}
	}
}

// shmSegment is one line of /proc/sysvipc/shm.
type shmSegment struct {
	id                   int
	size, attached, ctim string
}

// shmSegments lists the host's System V shm segments.
func shmSegments() ([]shmSegment, error) {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return nil, fmt.Errorf("list shm segments: %w", err)
	}
	var segs []shmSegment
	for i, line := range strings.Split(string(b), "\n") {
		// key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime …
		f := strings.Fields(line)
		if i == 0 || len(f) < 14 {
			continue
		}
		id, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		segs = append(segs, shmSegment{id: id, size: f[3], attached: f[6], ctim: f[13]})
	}
	return segs, nil
}
