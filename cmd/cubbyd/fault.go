package main

import (
	"log/slog"
	"os"
	"syscall"
)

// faultEnv names the fault point at which cubbyd kills itself with SIGKILL,
// for crash-consistency tests (critest's fault table). Unset, the fault
// points are inert: a nil hook, one comparison per point.
const faultEnv = "CUBBY_TEST_FAULT"

// faultHook returns the hook the CRI server and image store call at each
// named fault point, or nil when faultEnv is unset. Read once at startup.
func faultHook(log *slog.Logger) func(point string) {
	want := os.Getenv(faultEnv)
	if want == "" {
		return nil
	}
	log.Warn("fault injection enabled: cubbyd kills itself at this point", "point", want)
	return func(point string) {
		if point != want {
			return
		}
		log.Warn("fault point reached: SIGKILL", "point", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never go on past the point
	}
}
