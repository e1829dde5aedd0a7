package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrParse is wrapped by every error about malformed /proc content.
var ErrParse = errors.New("malformed proc file")

// userHZ is the unit of the utime and stime fields of /proc/PID/stat. The
// kernel reports them in USER_HZ, fixed at 100 on every architecture Linux
// exposes to user space as a stable ABI.
const userHZ = 100

// pfKthread is the PF_KTHREAD bit of the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// ProcKey identifies a process across pid reuse: the pid and its start time
// in clock ticks since boot.
type ProcKey struct {
	PID       int
	StartTime uint64
}

// Stat is the part of /proc/PID/stat that the bench uses.
type Stat struct {
	PID       int
	Comm      string
	PPID      int
	Flags     uint64
	UTime     uint64 // clock ticks (USER_HZ)
	STime     uint64 // clock ticks (USER_HZ)
	StartTime uint64 // clock ticks since boot
}

// Key returns the process identity of s.
func (s Stat) Key() ProcKey { return ProcKey{PID: s.PID, StartTime: s.StartTime} }

// Kernel reports whether s is a kernel thread.
func (s Stat) Kernel() bool { return s.Flags&pfKthread != 0 || s.PID == 2 || s.PPID == 2 }

// ParseStat parses the content of /proc/PID/stat. The comm field is in
// parentheses and may itself contain spaces and parentheses, so the fields
// are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	s := string(bytes.TrimSpace(b))
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("stat %q: no comm: %w", truncate(s), ErrParse)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("stat %q: pid: %w", truncate(s), ErrParse)
	}
	// rest[0] is field 3 (state).
	rest := strings.Fields(s[end+1:])
	const (
		fPPID      = 4
		fFlags     = 9
		fUTime     = 14
		fSTime     = 15
		fStartTime = 22
	)
	if len(rest) < fStartTime-2 {
		return Stat{}, fmt.Errorf("stat of %d: %d fields: %w", pid, len(rest)+2, ErrParse)
	}
	field := func(n int) (uint64, error) {
		v, err := strconv.ParseUint(rest[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat of %d: field %d: %w", pid, n, ErrParse)
		}
		return v, nil
	}
	st := Stat{PID: pid, Comm: s[open+1 : end]}
	ppid, err := field(fPPID)
	if err != nil {
		return Stat{}, err
	}
	st.PPID = int(ppid)
	for _, f := range []struct {
		n   int
		dst *uint64
	}{{fFlags, &st.Flags}, {fUTime, &st.UTime}, {fSTime, &st.STime}, {fStartTime, &st.StartTime}} {
		if *f.dst, err = field(f.n); err != nil {
			return Stat{}, err
		}
	}
	return st, nil
}

// ParseKBField returns the value in bytes of the "Name:  123 kB" line of
// /proc/PID/status or /proc/PID/smaps_rollup. A missing field is ErrParse
// (kernel threads have no VmRSS).
func ParseKBField(b []byte, name string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	prefix := name + ":"
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line[len(prefix):])
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("field %s %q: %w", name, line, ErrParse)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %s %q: %w", name, line, ErrParse)
		}
		return v * 1024, nil
	}
	return 0, fmt.Errorf("no field %s: %w", name, ErrParse)
}

// ParseMemoryCgroup returns the process's cgroup for memory accounting from
// the content of /proc/PID/cgroup: the v1 memory controller's path if there
// is one, else the unified (v2) path.
func ParseMemoryCgroup(b []byte) (string, error) {
	var unified string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path; the path may hold ':'.
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2], nil
			}
		}
	}
	if unified == "" {
		return "", fmt.Errorf("no memory or unified cgroup: %w", ErrParse)
	}
	return unified, nil
}

// ParseUnixListener returns the inode of the listening unix socket bound to
// path from the content of /proc/net/unix.
func ParseUnixListener(b []byte, path string) (uint64, error) {
	const soAcceptCon = 0x00010000
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode [Path]
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[7] != path {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&soAcceptCon == 0 {
			continue
		}
		ino, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unix socket %s inode %q: %w", path, f[6], ErrParse)
		}
		return ino, nil
	}
	return 0, fmt.Errorf("no listening unix socket %s: %w", path, ErrNotFound)
}

// ErrNotFound is returned when a process or socket the bench looks for does
// not exist.
var ErrNotFound = errors.New("not found")

// Proc reads process facts from a procfs mount (normally "/proc").
type Proc struct {
	Root string
}

// Stat reads /proc/PID/stat.
func (p Proc) Stat(pid int) (Stat, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return ParseStat(b)
}

// RSS returns VmRSS of pid in bytes.
func (p Proc) RSS(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	v, err := ParseKBField(b, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	return v, nil
}

// PSS returns the proportional set size of pid in bytes from smaps_rollup.
func (p Proc) PSS(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, fmt.Errorf("read smaps_rollup of %d: %w", pid, err)
	}
	v, err := ParseKBField(b, "Pss")
	if err != nil {
		return 0, fmt.Errorf("pss of %d: %w", pid, err)
	}
	return v, nil
}

// MemoryCgroup returns pid's memory cgroup path.
func (p Proc) MemoryCgroup(pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", fmt.Errorf("read cgroup of %d: %w", pid, err)
	}
	cg, err := ParseMemoryCgroup(b)
	if err != nil {
		return "", fmt.Errorf("cgroup of %d: %w", pid, err)
	}
	return cg, nil
}

// All returns the stat of every process. Processes that exit while it reads
// are skipped.
func (p Proc) All() ([]Stat, error) {
	ents, err := os.ReadDir(p.Root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p.Root, err)
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		st, err := p.Stat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, st)
	}
	return out, nil
}

// SocketOwners returns the pids that hold an fd on the listening unix
// socket bound to path: the daemon serving an endpoint.
func (p Proc) SocketOwners(path string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, "net", "unix"))
	if err != nil {
		return nil, fmt.Errorf("read unix sockets: %w", err)
	}
	ino, err := ParseUnixListener(b, path)
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("socket:[%d]", ino)
	ents, err := os.ReadDir(p.Root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p.Root, err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(p.Root, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && l == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("owner of unix socket %s: %w", path, ErrNotFound)
	}
	return pids, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
