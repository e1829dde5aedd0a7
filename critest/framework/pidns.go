package framework

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MountOwnProc makes /proc show this process's pid namespace. It is for a
// test binary started as PID 1 of new pid and mount namespaces (to play a
// node's init): it first makes every mount private, so that nothing done in
// the new mount namespace reaches the host's.
func MountOwnProc() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}
