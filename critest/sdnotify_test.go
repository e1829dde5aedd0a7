package critest

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"cubby/critest/framework"
)

// TestDaemonNotifiesSystemd runs cubbyd as a Type=notify unit with a
// watchdog would: it must report READY=1, feed the watchdog while it is
// healthy, and report STOPPING=1 on SIGTERM.
func TestDaemonNotifiesSystemd(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs a private cubbyd to pass NOTIFY_SOCKET to; the runtime is external")
	}
	name := "@cubby-critest-notify-" + framework.RandomHex(8)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	defer conn.Close()
	env := suite.NewEnv(t, framework.WithEnv("NOTIFY_SOCKET="+name, "WATCHDOG_USEC=1000000"))

	next := func(timeout time.Duration) string {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		if err != nil {
			t.Fatalf("read notify socket: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(10 * time.Second); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if got := next(5 * time.Second); got != "WATCHDOG=1" {
		t.Fatalf("second message %q, want WATCHDOG=1 within the 1s watchdog", got)
	}
	if err := env.Daemon.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		got := next(5 * time.Second)
		if got == "WATCHDOG=1" {
			continue
		}
		if got != "STOPPING=1" {
			t.Fatalf("message on SIGTERM %q, want STOPPING=1", got)
		}
		return
	}
}
