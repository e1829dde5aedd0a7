package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// minKernel is the oldest kernel that has every feature cubby needs: the
// newest of them is the immutable attribute on tmpfs (6.0), which keeps the
// sealed copy of cubby-pod unchangeable (the keeper checks that one when it
// seals; the rest are checked here).
const minKernel = "6.0"

// kernelFeature is one thing cubby relies on, and how to tell whether the
// running kernel has it.
type kernelFeature struct {
	name string
	// since is the first kernel version that has it.
	since string
	// required features refuse the start; the others degrade with a
	// warning (say how in fallback).
	required bool
	fallback string
	probe    func() error
}

// kernelFeatures are the checks run at start-up.
func kernelFeatures() []kernelFeature {
	return []kernelFeature{
		{name: "pidfd_open with PIDFD_NONBLOCK", since: "5.10", required: true, probe: probePidfd},
		{name: "openat2", since: "5.6", required: true, probe: probeOpenat2},
		{name: "mount_setattr", since: "5.12", required: true, probe: probeMountSetattr},
		{name: "overlay filesystem", since: "3.18", required: true, probe: func() error { return probeFilesystem("overlay") }},
		{name: "/proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)", since: "4.2", required: true, probe: probeChildrenFile},
		{name: "cgroup cpu, memory and pids controllers", since: "4.5", required: true, probe: probeCgroupControllers},
	}
}

// checkKernel runs the checks: it returns one error naming every missing
// required feature and the minimum kernel, and logs a warning for each
// missing optional one.
func checkKernel(log *slog.Logger, features []kernelFeature) error {
	var missing []string
	for _, f := range features {
		err := f.probe()
		if err == nil {
			continue
		}
		if !f.required {
			log.Warn("kernel feature missing; cubby degrades", "feature", f.name, "since", f.since, "fallback", f.fallback, "error", err)
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (Linux %s): %v", f.name, f.since, err))
	}
	if len(missing) == 0 {
		return nil
	}
	var uts unix.Utsname
	release := "unknown"
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	return fmt.Errorf("the kernel (%s) lacks what cubby needs (Linux %s or later): %s", release, minKernel, strings.Join(missing, "; "))
}

func probePidfd() error {
	fd, err := unix.PidfdOpen(os.Getpid(), unix.PIDFD_NONBLOCK)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func probeOpenat2() error {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// probeMountSetattr calls mount_setattr on a bad fd: a kernel that has it
// says EBADF, one that lacks it ENOSYS.
func probeMountSetattr() error {
	err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{})
	if errors.Is(err, unix.ENOSYS) {
		return err
	}
	return nil
}

// probeFilesystem asks the kernel for a filesystem context of type name:
// fsopen loads the module if needed (as a mount would) and mounts nothing.
func probeFilesystem(name string) error {
	fd, err := unix.Fsopen(name, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen %s: %w (modprobe %s)", name, err, name)
	}
	return unix.Close(fd)
}

func probeChildrenFile() error {
	_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d/children", unix.Gettid()))
	return err
}

// probeCgroupControllers checks that the controllers cubby sets limits
// with are there: in cgroup.controllers on a unified (v2) hierarchy, as
// mounted v1 hierarchies otherwise.
func probeCgroupControllers() error {
	want := []string{"cpu", "memory", "pids"}
	var have map[string]bool
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		have = map[string]bool{}
		for _, c := range strings.Fields(string(b)) {
			have[c] = true
		}
	} else {
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return err
		}
		have = map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 {
				for _, c := range strings.Split(parts[1], ",") {
					have[c] = true
				}
			}
		}
	}
	var missing []string
	for _, c := range want {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("controllers %s not available", strings.Join(missing, ", "))
	}
	return nil
}
