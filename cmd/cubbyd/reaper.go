package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// adoptOrphans makes cubbyd the child subreaper of what it starts and reaps
// the orphans that come to it until ctx ends. Pod inits are the children of
// the pod init keeper (sandbox/keeper), which cubbyd starts and which
// reaps them and what they leave behind; should the keeper die while cubbyd
// runs, its pod inits re-parent to cubbyd instead of PID 1, which on some
// machines never reaps, and the keeper itself is reaped here.
//
// Only exited children in another session are reaped: the keeper and the
// pod inits (started with setsid) and what they left. Children cubbyd
// starts through os/exec (CNI plugins) share its session and are left to
// their own Wait, which a foreign wait would break.
func adoptOrphans(ctx context.Context, log *slog.Logger) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("become child subreaper; orphans of dead pod inits go to PID 1", "error", err)
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	go func() {
		defer signal.Stop(sigs)
		tick := time.NewTicker(30 * time.Second) // a missed signal costs a zombie this long
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
			case <-tick.C:
			}
			for _, pid := range reapForeignZombies() {
				log.Debug("reaped adopted process", "pid", pid)
			}
		}
	}()
}

// reapForeignZombies reaps this process's exited children that run in
// another session and returns their pids. It looks only at this process's
// own children (the children lists of its threads), not at all of /proc:
// SIGCHLD comes for every CNI plugin run, so the cost must follow the
// number of children, not the number of processes on the node. A child
// the racy children lists miss is reaped at the next signal or tick.
func reapForeignZombies() []int {
	sid, err := unix.Getsid(0)
	if err != nil {
		return nil
	}
	var reaped []int
	for _, pid := range ownChildren() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		state, ppid, session, ok := statFields(string(b))
		if !ok || state != "Z" || ppid != os.Getpid() || session == sid {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
}

// ownChildren lists the children of every thread of this process: a
// child's parent is the thread that forked it, and orphans adopted by a
// subreaper are listed under its thread group leader.
func ownChildren() []int {
	tasks, _ := os.ReadDir("/proc/self/task")
	var pids []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// statFields returns the state, parent pid and session of a
// /proc/<pid>/stat line; comm may hold spaces, so fields count from its ')'.
func statFields(s string) (state string, ppid, session int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 { // state, ppid, pgrp, session
		return "", 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	session, err2 := strconv.Atoi(f[3])
	return f[0], ppid, session, err1 == nil && err2 == nil
}
