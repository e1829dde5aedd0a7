package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: one datagram of
// newline-separated KEY=VALUE assignments per message, sent to the unix
// datagram socket named by NOTIFY_SOCKET (a leading '@' names an abstract
// socket, which the net package maps to the leading NUL itself). A notifier
// with no socket, cubbyd outside a Type=notify unit, sends nothing.
type notifier struct {
	socket string
	// watchdog is WatchdogSec (from WATCHDOG_USEC); 0 when the unit has no
	// watchdog or it is meant for another process (WATCHDOG_PID).
	watchdog time.Duration
}

// notifyEnv are the variables systemd passes to a Type=notify service.
var notifyEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}

// newNotifier reads the sd_notify environment of process pid.
func newNotifier(getenv func(string) string, pid int) (*notifier, error) {
	n := &notifier{socket: getenv("NOTIFY_SOCKET")}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" || n.socket == "" {
		return n, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return n, nil // another process's watchdog
	}
	v, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || v == 0 {
		return nil, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", usec)
	}
	n.watchdog = time.Duration(v) * time.Microsecond
	return n, nil
}

// notifierFromEnv reads the sd_notify environment and removes it, so that
// the processes cubbyd starts (the keeper, pod inits) do not inherit it.
func notifierFromEnv() (*notifier, error) {
	n, err := newNotifier(os.Getenv, os.Getpid())
	for _, k := range notifyEnv {
		os.Unsetenv(k)
	}
	return n, err
}

// enabled reports whether cubbyd runs under a Type=notify unit.
func (n *notifier) enabled() bool { return n != nil && n.socket != "" }

// pingInterval is how often the watchdog is fed: half its timeout, as
// sd_watchdog_enabled(3) advises; 0 when there is no watchdog.
func (n *notifier) pingInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}

// notify sends one message, e.g. "READY=1" or "STOPPING=1".
func (n *notifier) notify(state string) error {
	if !n.enabled() {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %q: %w", n.socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", n.socket, err)
	}
	return nil
}
