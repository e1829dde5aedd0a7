package framework

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Leftovers lists what the private daemon still has on the host besides
// its stores: entries under its state directory's pods/ and containers/,
// mounts under its directories, cgroups under its cgroup parent, links on
// its bridge, reserved IPs of its network, its network's per-pod NAT
// rules, processes started under its
// state directory (but its pod init keeper, which like cubbyd serves the
// node and not a pod), and adopted pod inits nobody reaped. Empty once every
// pod is removed. Against an external endpoint it returns nothing.
func (e *Env) Leftovers() ([]string, error) {
	if !e.Private {
		return nil, nil
	}
	ReapOrphans()
	cfg := e.Daemon.Config
	var out []string
	for _, d := range []string{"pods", "containers"} {
		ents, err := os.ReadDir(filepath.Join(cfg.State, d))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, ent := range ents {
			out = append(out, fmt.Sprintf("state file %s", filepath.Join(cfg.State, d, ent.Name())))
		}
	}
	mounts, err := Mounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if under(m.MountPoint, cfg.State) || under(m.MountPoint, cfg.Root) {
			out = append(out, fmt.Sprintf("mount %s (%s)", m.MountPoint, m.FSType))
		}
	}
	cgMounts, err := CgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, m := range cgMounts {
		ents, _ := os.ReadDir(filepath.Join(m.MountPoint, cfg.CgroupParent))
		for _, ent := range ents {
			if ent.IsDir() {
				out = append(out, fmt.Sprintf("cgroup %s", filepath.Join(m.MountPoint, cfg.CgroupParent, ent.Name())))
			}
		}
	}
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", cfg.CNI.DefaultBridge, "brif"))
	for _, p := range ports {
		out = append(out, fmt.Sprintf("link %s on bridge %s", p.Name(), cfg.CNI.DefaultBridge))
	}
	ips, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", cfg.CNI.DefaultNetworkName))
	for _, ip := range ips {
		if looksLikeIP(ip.Name()) {
			out = append(out, fmt.Sprintf("IP %s of network %s", ip.Name(), cfg.CNI.DefaultNetworkName))
		}
	}
	nat, err := NATRules(cfg.CNI.DefaultNetworkName)
	if err != nil {
		return nil, err
	}
	for _, r := range nat {
		out = append(out, fmt.Sprintf("nat rule %s", r))
	}
	for _, p := range StateProcesses(cfg.State) {
		if !p.Keeper {
			out = append(out, fmt.Sprintf("process %d: %s", p.Pid, p.Cmdline))
		}
	}
	for _, pid := range Zombies(os.Getpid()) {
		out = append(out, fmt.Sprintf("zombie %d (%s), child of the test", pid, Comm(pid)))
	}
	if e.Daemon.cmd != nil {
		for _, pid := range Zombies(e.Daemon.cmd.Process.Pid) {
			out = append(out, fmt.Sprintf("zombie %d (%s), child of cubbyd", pid, Comm(pid)))
		}
	}
	return out, nil
}

// StateProcess is a process started under a daemon's state directory.
type StateProcess struct {
	Pid     int
	Cmdline string
	// Keeper says it is the daemon's pod init keeper (`cubby-pod keeper`).
	Keeper bool
}

// StateProcesses lists the processes whose command line names a path under
// state: pod inits, container init stages and the keeper.
func StateProcesses(state string) []StateProcess {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []StateProcess
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		keeperDir := len(args) > 3 && string(args[1]) == "keeper" && string(args[3]) == state
		if !keeperDir && !bytes.Contains(b, []byte(state+"/")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		out = append(out, StateProcess{Pid: pid, Cmdline: string(bytes.Join(args, []byte{' '})), Keeper: keeperDir})
	}
	return out
}
