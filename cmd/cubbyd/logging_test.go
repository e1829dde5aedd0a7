package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// logFile is a stand-in stderr and the JOURNAL_STREAM that names it.
func logFile(t *testing.T) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func logged(t *testing.T, f *os.File) []string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestJournalLogsCarryPriorityAndNoTime(t *testing.T) {
	f, stream := logFile(t)
	log := newLogger(logLevel("debug"), "text", f, stream)
	log.Debug("d")
	log.Info("i", "k", "v")
	log.With("pod", "p1").WithGroup("g").Warn("w", "k", 2)
	log.Error("e")
	lines := logged(t, f)
	want := []string{"<7>level=DEBUG msg=d", "<6>level=INFO msg=i k=v", "<4>level=WARN msg=w pod=p1 g.k=2", "<3>level=ERROR msg=e"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestJournalJSONLogs(t *testing.T) {
	f, stream := logFile(t)
	newLogger(logLevel("info"), "json", f, stream).Warn("w", "k", "v")
	lines := logged(t, f)
	rest, ok := strings.CutPrefix(lines[0], "<4>")
	if len(lines) != 1 || !ok {
		t.Fatalf("lines %q, want one with <4>", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(rest), &rec); err != nil {
		t.Fatalf("not JSON after the prefix: %v", err)
	}
	if _, hasTime := rec["time"]; hasTime || rec["msg"] != "w" || rec["k"] != "v" {
		t.Errorf("record %v", rec)
	}
}

func TestLogsOutsideTheJournal(t *testing.T) {
	f, stream := logFile(t)
	other, _ := logFile(t)
	for name, tc := range map[string]struct {
		f      *os.File
		stream string
	}{
		"no JOURNAL_STREAM":               {f, ""},
		"JOURNAL_STREAM names another fd": {other, stream},
		"JOURNAL_STREAM garbage":          {f, "x:y"},
	} {
		newLogger(logLevel("info"), "json", tc.f, tc.stream).Info("hello")
		lines := logged(t, tc.f)
		last := lines[len(lines)-1]
		var rec map[string]any
		if err := json.Unmarshal([]byte(last), &rec); err != nil {
			t.Errorf("%s: %q is not plain JSON: %v", name, last, err)
			continue
		}
		if _, hasTime := rec["time"]; !hasTime {
			t.Errorf("%s: no time in %q", name, last)
		}
	}
}

// TestLogFormatSwitch switches a journal sink from text to JSON while
// loggers derived before log from several goroutines: every line is whole,
// keeps its priority prefix and its attributes, and the lines after the
// switch are JSON.
func TestLogFormatSwitch(t *testing.T) {
	f, _ := logFile(t)
	sink := newLogSink(logLevel("info"), "text", f, true)
	derived := sink.logger().With("pod", "p1").WithGroup("g")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				derived.Info("m", "i", i)
			}
		})
	}
	sink.setFormat("json")
	wg.Wait()
	derived.Warn("after", "k", "v")
	lines := logged(t, f)
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, "<6>")
		if !ok {
			rest, ok = strings.CutPrefix(line, "<4>")
		}
		if !ok || !(strings.HasPrefix(rest, "level=") || strings.HasPrefix(rest, "{")) || !strings.Contains(rest, "p1") {
			t.Fatalf("torn or bare line %q", line)
		}
	}
	var rec map[string]any
	last := strings.TrimPrefix(lines[len(lines)-1], "<4>")
	if err := json.Unmarshal([]byte(last), &rec); err != nil || rec["pod"] != "p1" || rec["g"].(map[string]any)["k"] != "v" {
		t.Errorf("line after the switch %q: %v %v", last, rec, err)
	}
}
