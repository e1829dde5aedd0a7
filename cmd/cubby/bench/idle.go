package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// baseline is the host before the bench made any pod.
type baseline struct {
	procs     map[ProcKey]bool
	daemonPID int
	daemonRSS uint64
}

// baseline records every process alive now and the daemon's RSS.
func (r *runner) baseline() (baseline, error) {
	b := baseline{procs: make(map[ProcKey]bool), daemonPID: r.opts.DaemonPID}
	all, err := r.proc.All()
	if err != nil {
		return b, fmt.Errorf("baseline processes: %w", err)
	}
	for _, st := range all {
		b.procs[st.Key()] = true
	}
	if b.daemonPID == 0 {
		b.daemonPID, err = r.findDaemon()
		if err != nil {
			r.logf("no daemon pid (%v): daemon RSS not measured; pass --daemon-pid", err)
			return b, nil
		}
	}
	if b.daemonRSS, err = r.proc.RSS(b.daemonPID); err != nil {
		return b, fmt.Errorf("daemon rss: %w", err)
	}
	return b, nil
}

// findDaemon returns the process that holds the endpoint's listening socket.
func (r *runner) findDaemon() (int, error) {
	path := strings.TrimPrefix(r.opts.Endpoint, "unix://")
	pids, err := r.proc.SocketOwners(path)
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, pid := range pids {
		// systemd holds sockets it activates; prefer the daemon.
		if st, err := r.proc.Stat(pid); err == nil && pid != self && st.Comm != "systemd" {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("owner of %s: %w", path, ErrNotFound)
}

// containerInfo is the part of ContainerStatus(verbose).info["info"] that
// containerd, CRI-O and cubby share.
type containerInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// containerCgroups asks the runtime where each container runs.
func (r *runner) containerCgroups(ctx context.Context, pods []benchPod) []ContainerCgroup {
	out := make([]ContainerCgroup, 0, len(pods))
	for _, p := range pods {
		c := ContainerCgroup{ID: p.ContainerID}
		cctx, cancel := r.call(ctx)
		resp, err := r.rt.ContainerStatus(cctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.ContainerID, Verbose: true})
		cancel()
		var info containerInfo
		if err == nil && json.Unmarshal([]byte(resp.GetInfo()["info"]), &info) == nil {
			if info.Pid > 0 {
				c.Cgroup, _ = r.proc.MemoryCgroup(info.Pid)
			}
			if cp := info.RuntimeSpec.Linux.CgroupsPath; c.Cgroup == "" && strings.HasPrefix(cp, "/") {
				c.Cgroup = cp // cgroupfs driver: a path
			}
		}
		out = append(out, c)
	}
	return out
}

// sample is the runtime processes at one instant.
type sample map[ProcKey]Process

// runtimeProcesses classifies every process on the host.
func (r *runner) runtimeProcesses(cl *Classifier) (sample, error) {
	all, err := r.proc.All()
	if err != nil {
		return nil, err
	}
	procs := make([]Process, 0, len(all))
	for _, st := range all {
		p := Process{Stat: st}
		if !cl.Baseline[st.Key()] && !st.Kernel() {
			p.MemoryCgroup, _ = r.proc.MemoryCgroup(st.PID)
		}
		procs = append(procs, p)
	}
	s := make(sample)
	for _, p := range cl.Classify(procs) {
		s[p.Key()] = p
	}
	return s, nil
}

// idle is section 3: with pods running, the memory of the runtime's
// processes, the daemon's growth, and the CPU both burn over Options.Idle.
func (r *runner) idle(ctx context.Context, base baseline, pods []benchPod) IdleResult {
	res := IdleResult{Pods: len(pods), DaemonPID: base.daemonPID, DaemonRSSBefore: base.daemonRSS, IdleSeconds: r.opts.Idle.Seconds()}
	r.logf("measuring %d idle pods for %s", len(pods), r.opts.Idle)
	cl := &Classifier{
		Baseline:   base.procs,
		Exclude:    map[int]bool{os.Getpid(): true, base.daemonPID: true},
		Containers: r.containerCgroups(ctx, pods),
	}
	for _, p := range pods {
		cl.PodIDs = append(cl.PodIDs, p.ID)
	}
	before, err := r.runtimeProcesses(cl)
	if err != nil {
		res.Status = statusOf(err)
		return res
	}
	daemonBefore, _ := r.proc.Stat(base.daemonPID)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		res.Status = statusOf(ctx.Err())
		return res
	case <-time.After(r.opts.Idle):
	}
	after, err := r.runtimeProcesses(cl)
	if err != nil {
		res.Status = statusOf(err)
		return res
	}
	elapsed := time.Since(t0).Seconds()
	res.IdleSeconds = elapsed

	res.Processes = make(map[string]int)
	var ticks uint64
	for key, a := range after {
		b, ok := before[key]
		if !ok {
			continue // appeared during the idle window: not steady state
		}
		rss, err1 := r.proc.RSS(key.PID)
		pss, err2 := r.proc.PSS(key.PID)
		if err1 != nil || err2 != nil {
			continue // exited meanwhile
		}
		res.Processes[a.Comm]++
		res.RSSTotal += rss
		res.PSSTotal += pss
		ticks += (a.UTime + a.STime) - (b.UTime + b.STime)
	}
	res.RSSPerPod = res.RSSTotal / uint64(len(pods))
	res.PSSPerPod = res.PSSTotal / uint64(len(pods))
	res.RuntimeCPUPercent = cpuPercent(ticks, elapsed)

	if base.daemonPID != 0 {
		if rss, err := r.proc.RSS(base.daemonPID); err == nil {
			res.DaemonRSSAfter = rss
			res.DaemonGrowthPerPod = (int64(rss) - int64(base.daemonRSS)) / int64(len(pods))
		}
		if st, err := r.proc.Stat(base.daemonPID); err == nil && st.Key() == daemonBefore.Key() {
			res.DaemonCPUPercent = cpuPercent(st.UTime+st.STime-daemonBefore.UTime-daemonBefore.STime, elapsed)
		}
	}
	return res
}

// cpuPercent is ticks of CPU time over seconds of wall time, in percent of
// one CPU.
func cpuPercent(ticks uint64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(ticks) / userHZ / seconds * 100
}
