package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"
)

// faultEnv names the fault point at which cubbyd kills itself with SIGKILL,
// for crash-consistency tests (critest's fault table); delayEnv names one
// where it sleeps, as "<point>=<duration>", for tests of calls that
// overlap a slow step. Unset, the fault points are inert: a nil hook, one
// comparison per point.
const (
	faultEnv = "CUBBY_TEST_FAULT"
	delayEnv = "CUBBY_TEST_DELAY"
)

// faultHook returns the hook the CRI server and image store call at each
// named fault point, or nil when neither variable is set. Read once at
// startup.
func faultHook(log *slog.Logger) (func(point string), error) {
	kill := os.Getenv(faultEnv)
	delayPoint, delay, err := parseDelay(os.Getenv(delayEnv))
	if err != nil {
		return nil, err
	}
	if kill == "" && delayPoint == "" {
		return nil, nil
	}
	if kill != "" {
		log.Warn("fault injection enabled: cubbyd kills itself at this point", "point", kill)
	}
	if delayPoint != "" {
		log.Warn("fault injection enabled: cubbyd sleeps at this point", "point", delayPoint, "delay", delay)
	}
	return func(point string) {
		if point == delayPoint {
			time.Sleep(delay)
		}
		if point != kill {
			return
		}
		log.Warn("fault point reached: SIGKILL", "point", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never go on past the point
	}, nil
}

// parseDelay reads delayEnv's "<point>=<duration>"; empty is no delay.
func parseDelay(v string) (string, time.Duration, error) {
	if v == "" {
		return "", 0, nil
	}
	point, d, ok := strings.Cut(v, "=")
	dur, err := time.ParseDuration(d)
	if !ok || point == "" || err != nil || dur <= 0 {
		return "", 0, fmt.Errorf("%s=%q: want <fault point>=<duration>", delayEnv, v)
	}
	return point, dur, nil
}
