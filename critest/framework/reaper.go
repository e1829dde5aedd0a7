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
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var reaped []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, ppid, session, ok := parentAndSession(string(b))
		if !ok || st != "Z" || ppid != self || session == sid {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
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
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, ppid, _, ok := parentAndSession(string(b))
		if ok && st == "Z" && ppid == parent {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, pid)
		}
	}
	return out
}

// AllZombies returns every zombie process this process can see, each as
// "pid (comm), child of ppid".
func AllZombies() []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if st, ppid, _, ok := parentAndSession(string(b)); ok && st == "Z" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, fmt.Sprintf("%d (%s), child of %d", pid, Comm(pid), ppid))
		}
	}
	return out
}
