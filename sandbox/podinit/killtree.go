package podinit

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// killTree SIGKILLs pid (a child of the pod init, numbered in the pod's pid
// namespace) and every process it started. The tree is first frozen with
// SIGSTOP from the top, so nothing in it can fork while it is walked; then
// every member is killed. Processes that left the tree by being re-parented
// (their parent died earlier) are out of reach, as with any runtime that
// has no cgroup of its own for the exec.
func killTree(pid int) {
	root, err := findHostPid(pid)
	if err != nil {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = unix.Kill(pid, unix.SIGKILL)
		return
	}
	level := ownPidLevel()
	stopped := map[int]int{} // host pid → pid in our namespace
	for round := 0; round < 64; round++ {
		found := false
		for _, host := range descendants(root) {
			if _, ok := stopped[host]; ok {
				continue
			}
			local := localPid(host, level)
			if local <= 0 {
				continue
			}
			_ = unix.Kill(local, unix.SIGSTOP)
			stopped[host] = local
			found = true
		}
		if !found {
			break
		}
	}
	_ = unix.Kill(-pid, unix.SIGKILL) // its process group, in case the walk missed some
	for _, local := range stopped {
		_ = unix.Kill(local, unix.SIGKILL)
	}
}

// descendants returns root and every process below it, as host pids.
func descendants(root int) []int {
	out := []int{root}
	for i := 0; i < len(out); i++ {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(out[i]) + "/task")
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(out[i]) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if p, err := strconv.Atoi(f); err == nil {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// ownPidLevel is the depth of the pod init's pid namespace below the host's
// (the index of its own pid in its NSpid line).
func ownPidLevel() int {
	f := nsPids("self")
	if len(f) == 0 {
		return 0
	}
	return len(f) - 1
}

// localPid is host pid host as numbered in the namespace at level.
func localPid(host, level int) int {
	f := nsPids(strconv.Itoa(host))
	if level >= len(f) {
		return 0
	}
	p, _ := strconv.Atoi(f[level])
	return p
}

// nsPids returns the NSpid fields of /proc/<pid>/status.
func nsPids(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}
