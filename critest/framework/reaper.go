package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A killed cubbyd orphans its pod inits. On a node the supervisor that
// restarts cubbyd (systemd, or any reaping PID 1) adopts and reaps them;
// the suite plays that part for the daemons it starts: it is their child
// subreaper, so the pod inits that a test's Restart orphans become its
// children, and ReapOrphans reaps those that have exited.

// BecomeSubreaper makes the test process the child subreaper of the
// daemons it starts.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	return nil
}

// ReapOrphans reaps the exited children of the test process that it
// adopted (they run in another session: the pod inits and what they left)
// and returns their pids. Children the tests started themselves share the
// test's session and are left to their own Wait.
func ReapOrphans() []int {
	self := os.Getpid()
	sid, err := unix.Getsid(0)
	if err != nil {
		return nil
	}
	var reaped []int
	for _, z := range zombies() {
		if z.ppid != self || z.session == sid {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(z.pid, &ws, syscall.WNOHANG, nil); err == nil && got == z.pid {
			reaped = append(reaped, z.pid)
		}
	}
	return reaped
}

// zombie is a process that has exited and awaits its parent's wait.
type zombie struct{ pid, ppid, session int }

// zombies lists every zombie this process can see, from /proc/<pid>/stat.
func zombies() []zombie {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []zombie
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, ppid, session, ok := parentAndSession(string(b))
		if !ok || st != "Z" {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			out = append(out, zombie{pid: pid, ppid: ppid, session: session})
		}
	}
	return out
}

// parentAndSession returns the state, parent pid and session id from a
// /proc/<pid>/stat line.
func parentAndSession(s string) (state string, ppid, session int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] state (field 3), f[1] ppid, f[2] pgrp, f[3] session.
	if len(f) < 4 {
		return "", 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	session, err2 := strconv.Atoi(f[3])
	return f[0], ppid, session, err1 == nil && err2 == nil
}

// Zombies returns the zombie processes whose parent is pid.
func Zombies(parent int) []int {
	var out []int
	for _, z := range zombies() {
		if z.ppid == parent {
			out = append(out, z.pid)
		}
	}
	return out
}

// AllZombies returns every zombie process this process can see, each as
// "pid (comm), child of ppid".
func AllZombies() []string {
	var out []string
	for _, z := range zombies() {
		out = append(out, fmt.Sprintf("%d (%s), child of %d", z.pid, Comm(z.pid), z.ppid))
	}
	return out
}
