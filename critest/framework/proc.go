package framework

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrNoField is returned when a /proc file lacks an expected field.
var ErrNoField = errors.New("field not found")

// Process identifies a host process across pid reuse: a pid and the start
// time the kernel recorded for it.
type Process struct {
	Pid       int
	StartTime uint64 // field 22 of /proc/<pid>/stat, in clock ticks since boot
}

// ProcessOf reads the start time of pid.
func ProcessOf(pid int) (Process, error) {
	st, err := procStat(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{Pid: pid, StartTime: st.startTime}, nil
}

// Alive reports whether p still exists and is not a zombie. A pid reused
// by another process does not count.
func (p Process) Alive() (bool, error) {
	st, err := procStat(p.Pid)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.startTime == p.StartTime && st.state != "Z" && st.state != "X", nil
}

// Exists reports whether p still has a pid table entry, zombie or not.
func (p Process) Exists() (bool, error) {
	st, err := procStat(p.Pid)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.startTime == p.StartTime, nil
}

// Parent returns p's parent pid.
func (p Process) Parent() (int, error) {
	st, err := procStat(p.Pid)
	if err != nil {
		return 0, err
	}
	if st.startTime != p.StartTime {
		return 0, fmt.Errorf("process %d: %w", p.Pid, fs.ErrNotExist)
	}
	return st.ppid, nil
}

type stat struct {
	state     string
	ppid      int
	startTime uint64
}

// procStat parses /proc/<pid>/stat. The comm field may hold spaces and
// parentheses, so fields are counted from the last ')'.
func procStat(pid int) (stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, syscall.ESRCH) {
		// The directory was there but the task was reaped while it was
		// read: it is gone.
		return stat{}, fmt.Errorf("read /proc/%d/stat: %w", pid, fs.ErrNotExist)
	}
	if err != nil {
		return stat{}, err
	}
	return parseStat(string(data))
}

func parseStat(s string) (stat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("parse stat %q: %w", s, ErrNoField)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return stat{}, fmt.Errorf("parse stat %q: %w", s, ErrNoField)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("parse start time %q: %w", f[19], err)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return stat{}, fmt.Errorf("parse parent pid %q: %w", f[1], err)
	}
	return stat{state: f[0], ppid: ppid, startTime: start}, nil
}

// StatusField returns the value of a "Name:\tvalue" line of
// /proc/<pid>/status.
func StatusField(pid int, name string) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	return statusField(string(data), name)
}

func statusField(status, name string) (string, error) {
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("status field %q: %w", name, ErrNoField)
}

// NamespaceOf returns the namespace identity ("net:[4026531840]") of pid's
// namespace of the given type ("net", "pid", ...). pid 0 means the test
// process itself.
func NamespaceOf(pid int, typ string) (string, error) {
	p := "/proc/self/ns/" + typ
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/ns/%s", pid, typ)
	}
	return os.Readlink(p)
}

// CgroupOf returns pid's cgroup path in the hierarchy that has controller
// (e.g. "memory") in cgroup v1, or its cgroup v2 path when controller is "".
func CgroupOf(pid int, controller string) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	return cgroupPath(string(data), controller)
}

// cgroupPath picks a line "hierarchy-ID:controller-list:path" of
// /proc/<pid>/cgroup.
func cgroupPath(data, controller string) (string, error) {
	for line := range strings.Lines(data) {
		f := strings.SplitN(strings.TrimRight(line, "\n"), ":", 3)
		if len(f) != 3 {
			continue
		}
		if controller == "" && f[0] == "0" && f[1] == "" {
			return f[2], nil
		}
		if controller != "" {
			for c := range strings.SplitSeq(f[1], ",") {
				if c == controller {
					return f[2], nil
				}
			}
		}
	}
	return "", fmt.Errorf("cgroup of controller %q: %w", controller, ErrNoField)
}

// Comm returns pid's command name for messages, or "?".
func Comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
