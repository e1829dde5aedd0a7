package bench

import (
	"path"
	"strings"
)

// Process is what classification knows about one host process.
type Process struct {
	Stat
	// MemoryCgroup is the process's memory cgroup path (v1 memory
	// controller, else unified), "" if unreadable.
	MemoryCgroup string
}

// ContainerCgroup names one container for classification: its id and the
// memory cgroup its init runs in ("" if the runtime did not tell).
type ContainerCgroup struct {
	ID     string
	Cgroup string
}

// Classifier finds the runtime's own per-pod processes in a snapshot of the
// host's processes.
//
// The rule, generic across runtimes (cubby's cubby-pod; containerd's shims
// and pause; CRI-O's conmon and pause). A process is a container process
// when its memory cgroup is a container's cgroup (learned from the
// container's pid through ContainerStatus(verbose)) or below one; for a
// container whose cgroup the runtime did not tell, when the last element of
// its cgroup path carries the container's id (every runtime names a
// container's cgroup after its id). A process is a runtime process when
//
//  1. it was not running when the bench started (Baseline holds the identity
//     — pid and start time — of every process alive then), is not a kernel
//     thread, not the CRI daemon and not the bench itself (Exclude), and is
//     not a container process;
//  2. and it belongs to the bench's pods: it is an ancestor of a container
//     process (cubby-pod, a shim, conmon), or the last element of its cgroup
//     path carries a pod or container id (containerd's and CRI-O's pause,
//     CRI-O's conmon scopes), or its parent is a runtime process (pause under
//     containerd's per-pod shim). Processes that merely appeared on the host
//     meanwhile — a shell, a build — are not counted.
//
// The caller samples twice and keeps what is alive in both, so short-lived
// helpers (CNI plugins, exec sessions) are no per-pod cost.
type Classifier struct {
	Baseline   map[ProcKey]bool
	Exclude    map[int]bool
	Containers []ContainerCgroup
	PodIDs     []string
}

// minIDLen is the shortest id matched inside cgroup names, so a runtime
// with short ids cannot match unrelated cgroups by accident.
const minIDLen = 12

// Classify returns the runtime processes among procs, one snapshot.
func (c *Classifier) Classify(procs []Process) []Process {
	byPID := make(map[int]*Process, len(procs))
	for i := range procs {
		byPID[procs[i].PID] = &procs[i]
	}
	candidate := func(p *Process) bool {
		return !c.Baseline[p.Key()] && !c.Exclude[p.PID] && !p.Kernel() && !c.inContainer(p.MemoryCgroup)
	}
	runtime := make(map[int]bool)
	for i := range procs {
		p := &procs[i]
		if c.Baseline[p.Key()] || p.Kernel() {
			continue
		}
		if c.inContainer(p.MemoryCgroup) {
			// Walk up to the process that holds the container.
			for q := byPID[p.PPID]; q != nil && candidate(q) && !runtime[q.PID]; q = byPID[q.PPID] {
				runtime[q.PID] = true
			}
			continue
		}
		if candidate(p) && c.namesObject(p.MemoryCgroup) {
			runtime[p.PID] = true
		}
	}
	// Children of runtime processes that are not containers: repeat until
	// nothing changes (trees are shallow).
	for changed := true; changed; {
		changed = false
		for i := range procs {
			p := &procs[i]
			if !runtime[p.PID] && runtime[p.PPID] && candidate(p) {
				runtime[p.PID] = true
				changed = true
			}
		}
	}
	var out []Process
	for _, p := range procs {
		if runtime[p.PID] {
			out = append(out, p)
		}
	}
	return out
}

// inContainer reports whether cgroup cg is a container's or below one.
func (c *Classifier) inContainer(cg string) bool {
	if cg == "" {
		return false
	}
	for _, ct := range c.Containers {
		if ct.Cgroup == "" || ct.Cgroup == "/" {
			if idIn(ct.ID, cg) {
				return true
			}
			continue
		}
		if cg == ct.Cgroup || strings.HasPrefix(cg, strings.TrimSuffix(ct.Cgroup, "/")+"/") {
			return true
		}
	}
	return false
}

// namesObject reports whether the last element of cgroup cg carries a pod
// or container id.
func (c *Classifier) namesObject(cg string) bool {
	for _, id := range c.PodIDs {
		if idIn(id, cg) {
			return true
		}
	}
	for _, ct := range c.Containers {
		if idIn(ct.ID, cg) {
			return true
		}
	}
	return false
}

func idIn(id, cg string) bool {
	return cg != "" && len(id) >= minIDLen && strings.Contains(path.Base(cg), id)
}
