package critest

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestDaemonLogsForTheJournal starts cubbyd with JOURNAL_STREAM naming its
// stderr, as systemd does for a unit logging to the journal, and checks
// that its lines start with a syslog priority and carry no timestamp.
func TestDaemonLogsForTheJournal(t *testing.T) {
	if suite.Options().External() {
		t.Skip("reads the private cubbyd's stderr; the runtime is external")
	}
	env := suite.NewEnv(t)
	fi, err := os.Stat(env.Daemon.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	before := fi.Size()
	env.StartAgain(t, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	b, err := os.ReadFile(env.Daemon.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b[before:])), "\n")
	served := false
	for _, line := range lines {
		if !strings.Contains(line, "level=") {
			continue // not a log record
		}
		if !strings.HasPrefix(line, "<") || strings.Contains(line, "time=") {
			t.Errorf("journal line without a priority or with a timestamp: %q", line)
		}
		if strings.HasPrefix(line, `<6>level=INFO msg="cubbyd serving CRI"`) {
			served = true
		}
	}
	if !served {
		t.Errorf("no <6> info line saying cubbyd serves CRI in:\n%s", strings.Join(lines, "\n"))
	}
}
