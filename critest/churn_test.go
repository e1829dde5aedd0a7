package critest

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// The churn size: the suite runs a short churn; `-churn.cycles 200` is the
// full run whose figures the churn benchmark reports.
var (
	churnCycles   = flag.Int("churn.cycles", 20, "pod lifecycles TestChurn runs")
	churnParallel = flag.Int("churn.parallel", 8, "pod lifecycles TestChurn runs at a time")
)

// daemonFigures are what a daemon holds that a leak would grow.
type daemonFigures struct {
	FDs, Threads int
	RSSKiB       int64
}

func readDaemonFigures(pid int) (daemonFigures, error) {
	var f daemonFigures
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return f, err
	}
	f.FDs = len(fds)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return f, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		switch k {
		case "Threads":
			f.Threads, _ = strconv.Atoi(v)
		case "VmRSS":
			f.RSSKiB, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return f, nil
}

// hostFootprint is what a private daemon's pods leave on the host: mounts
// under its directories, processes in its cgroups, links on its bridge,
// reserved IPs, and the files under its root and state.
type hostFootprint struct {
	Mounts, Procs, Veths, IPs, Files []string
}

func readHostFootprint(t *testing.T, env *framework.Env) hostFootprint {
	t.Helper()
	cfg := env.Daemon.Config
	var fp hostFootprint
	mounts, err := framework.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(cfg.Root)
	for _, m := range mounts {
		if m.MountPoint == base || strings.HasPrefix(m.MountPoint, base+"/") || strings.Contains(m.MountPoint, "/netns/") && strings.Contains(m.MountPoint, base) {
			fp.Mounts = append(fp.Mounts, m.MountPoint)
		}
	}
	// Every process of a pod lives in a cgroup under the daemon's parent.
	for _, cm := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		dir := filepath.Join(cm, cfg.CgroupParent)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			continue
		}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != dir {
				fp.Procs = append(fp.Procs, "cgroup "+p)
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, pid := range strings.Fields(string(b)) {
				fp.Procs = append(fp.Procs, "pid "+pid+" in "+p)
			}
			return nil
		})
		break
	}
	links, err := os.ReadDir(filepath.Join("/sys/class/net", cfg.CNI.DefaultBridge, "brif"))
	if err == nil {
		for _, l := range links {
			fp.Veths = append(fp.Veths, l.Name())
		}
	}
	ips, err := os.ReadDir(filepath.Join("/var/lib/cni/networks", cfg.CNI.DefaultNetworkName))
	if err == nil {
		for _, ip := range ips {
			if looksLikeIPName(ip.Name()) {
				fp.IPs = append(fp.IPs, ip.Name())
			}
		}
	}
	for _, dir := range []string{cfg.Root, cfg.State} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dir {
				return nil
			}
			fp.Files = append(fp.Files, p)
			if d.IsDir() && slices.Contains(fp.Mounts, p) {
				return fs.SkipDir // a container's rootfs: counted as a mount
			}
			return nil
		})
	}
	return fp
}

func looksLikeIPName(name string) bool {
	return strings.Count(name, ".") == 3 || strings.Contains(name, ":")
}

// diffFootprint reports what after has that before had not.
func diffFootprint(before, after hostFootprint) []string {
	var extra []string
	add := func(kind string, b, a []string) {
		for _, x := range a {
			if !slices.Contains(b, x) {
				extra = append(extra, kind+" "+x)
			}
		}
	}
	add("mount", before.Mounts, after.Mounts)
	add("process", before.Procs, after.Procs)
	add("veth", before.Veths, after.Veths)
	add("ip", before.IPs, after.IPs)
	add("file", before.Files, after.Files)
	return extra
}

// churnCycle runs one pod through its whole life: run, create, start,
// exec, stop, remove; and pulls and removes an image of its own.
func churnCycle(ctx context.Context, env *framework.Env, image, extraImage string, n int) error {
	rs, is := env.RuntimeService(), env.ImageService()
	pod := podConfig(fmt.Sprintf("churn-%d", n), "")
	pod.LogDirectory = ""
	run, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		return fmt.Errorf("run pod: %w", err)
	}
	podID := run.GetPodSandboxId()
	cfg := containerConfig("churn", image, "", "sleep", "4242")
	cr, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		return fmt.Errorf("create container in %q: %w", podID, err)
	}
	id := cr.GetContainerId()
	if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start %q: %w", id, err)
	}
	ex, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo churn"}, Timeout: 30})
	if err != nil {
		return fmt.Errorf("exec in %q: %w", id, err)
	}
	if string(ex.GetStdout()) != "churn\n" || ex.GetExitCode() != 0 {
		return fmt.Errorf("exec in %q: stdout %q, exit %d", id, ex.GetStdout(), ex.GetExitCode())
	}
	pull, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: extraImage}})
	if err != nil {
		return fmt.Errorf("pull %s: %w", extraImage, err)
	}
	if _, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		return fmt.Errorf("stop %q: %w", id, err)
	}
	if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("remove %q: %w", id, err)
	}
	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("stop pod %q: %w", podID, err)
	}
	if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("remove pod %q: %w", podID, err)
	}
	// Other cycles may hold the same image: a remove that races a pull
	// of it is fine either way, an error is not.
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pull.GetImageRef()}}); ignoreNotFound(err) != nil {
		return fmt.Errorf("remove image %s: %w", extraImage, err)
	}
	return nil
}

// pushChurnImage pushes a one-file image for the churn cycles to pull and
// remove, and returns its reference.
func pushChurnImage(t *testing.T, reg *testimage.Registry) string {
	t.Helper()
	img, err := testimage.WithFiles(empty.Image, testimage.File{Path: "/churn", Mode: 0o644, Data: []byte("churn")})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(framework.Context(t), img, "churn:1"); err != nil {
		t.Fatal(err)
	}
	return reg.Host + "/churn:1"
}

// runChurn runs cycles pod lifecycles, parallel at a time.
func runChurn(t *testing.T, env *framework.Env, image, extraImage string, cycles, parallel int) {
	t.Helper()
	ctx := framework.Context(t)
	work := make(chan int)
	errs := make(chan error, cycles)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if err := churnCycle(ctx, env, image, extraImage, n); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", n, err)
				}
			}
		}()
	}
	for n := range cycles {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkFigures checks that the long-lived process name (pid) holds no more
// fds, threads and memory than before the churn.
func checkFigures(t *testing.T, name string, pid int, before daemonFigures, parallel int) {
	t.Helper()
	// fds of finished calls close as their goroutines end: give them a
	// moment, bounded.
	var after daemonFigures
	var err error
	_ = framework.Poll(framework.Context(t), 100*time.Millisecond, func() (bool, error) {
		after, err = readDaemonFigures(pid)
		return err == nil && after.FDs <= before.FDs, err
	})
	if err != nil {
		t.Errorf("%s after the churn: %v", name, err)
		return
	}
	t.Logf("%s before: fds %d threads %d rss %d KiB; after: fds %d threads %d rss %d KiB",
		name, before.FDs, before.Threads, before.RSSKiB, after.FDs, after.Threads, after.RSSKiB)
	if after.FDs > before.FDs {
		t.Errorf("%s holds %d fds after the churn, %d before", name, after.FDs, before.FDs)
	}
	// Go keeps idle threads; a blocking call parked on each of them is
	// what the warm-up round already made.
	if after.Threads > before.Threads+parallel {
		t.Errorf("%s has %d threads after the churn, %d before", name, after.Threads, before.Threads)
	}
	// RSS is flat: the heap of the churn is garbage; a per-pod leak of
	// 200 cycles would not fit in this bound.
	if after.RSSKiB > before.RSSKiB*3/2+16<<10 {
		t.Errorf("%s RSS grew from %d KiB to %d KiB over the churn", name, before.RSSKiB, after.RSSKiB)
	}
}

// TestChurn runs many pod lifecycles, several at a time, and checks that
// they leave nothing behind: no mount, process, cgroup, veth, IP or file
// more than before, and the fds and threads of the daemon and of the pod
// init keeper back where they were.
// The figures are logged; `-churn.cycles 200 -v` is the full churn.
func TestChurn(t *testing.T) {
	env := suite.NewEnv(t)
	if !env.Private {
		t.Skip("churn measures a private cubbyd's process and directories")
	}
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	extraRef := pushChurnImage(t, reg)

	// One round first: what the daemon sets up once (network, caches,
	// worker threads for parallel calls) is not a leak.
	parallel := *churnParallel
	runChurn(t, env, reg.Ref, extraRef, parallel, parallel)
	if t.Failed() {
		t.FailNow()
	}
	// The long-lived processes a leak would grow: cubbyd, and the pod init
	// keeper the first round started.
	procs := map[string]int{"cubbyd": env.Daemon.Pid()}
	for _, p := range framework.StateProcesses(env.Config().State) {
		if p.Keeper {
			procs["keeper"] = p.Pid
		}
	}
	if procs["keeper"] == 0 {
		t.Fatal("no pod init keeper runs after the first round")
	}
	footBefore := readHostFootprint(t, env)
	before := map[string]daemonFigures{}
	for name, pid := range procs {
		f, err := readDaemonFigures(pid)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before[name] = f
	}

	start := time.Now()
	runChurn(t, env, reg.Ref, extraRef, *churnCycles, parallel)
	elapsed := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("churn: %d cycles, %d at a time, in %s (%.1f cycles/s)", *churnCycles, parallel, elapsed.Round(time.Millisecond), float64(*churnCycles)/elapsed.Seconds())
	for _, name := range []string{"cubbyd", "keeper"} {
		checkFigures(t, name, procs[name], before[name], parallel)
	}
	if extra := diffFootprint(footBefore, readHostFootprint(t, env)); len(extra) > 0 {
		t.Errorf("the churn left %d things behind:\n%s", len(extra), strings.Join(extra, "\n"))
	}
}
