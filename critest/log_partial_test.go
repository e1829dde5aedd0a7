package critest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// maxLogLine is the longest record content kubelet's default
// max_container_log_line_size allows (16 KiB); runtimes split longer lines
// into P records.
const maxLogLine = 16 * 1024

// runToExit runs command in a new container of a new pod, waits for it
// to exit and returns the records of its CRI log.
func runToExit(t *testing.T, env *framework.Env, name string, command ...string) []framework.LogEntry {
	t.Helper()
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig(name, logDir)
	podID := runPod(t, env, pod)
	id := createContainer(t, env, podID, pod, containerConfig(name, reg.Ref, name+".log", command...))
	startContainer(t, env, id)
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	return readRecords(t, filepath.Join(logDir, name+".log"))
}

func readRecords(t *testing.T, path string) []framework.LogEntry {
	t.Helper()
	records, err := framework.ReadLogRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// checkRecords checks that records are, tag and content, want (each
// "P content" or "F content").
func checkRecords(t *testing.T, records []framework.LogEntry, want ...string) {
	t.Helper()
	got := make([]string, len(records))
	for i, r := range records {
		tag := "F"
		if r.Partial {
			tag = "P"
		}
		got[i] = tag + " " + r.Content
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log records %q, want %q", got, want)
	}
}

// TestLogOutputWithoutNewlineAtExitIsPartial is the e2e spec "should
// report termination message from log output if TerminationMessagePolicy
// FallbackToLogsOnError is set": kubelet takes the message from the log of
// `echo -n DONE; false` and wants "DONE", so the last chunk, which has no
// newline, must be a P record (an F record reads back as "DONE\n").
func TestLogOutputWithoutNewlineAtExitIsPartial(t *testing.T) {
	env := suite.NewEnv(t)
	records := runToExit(t, env, "donelog", "sh", "-c", "echo -n DONE; false")
	checkRecords(t, records, "P DONE")
	if got := framework.KubeletText(records, "stdout"); got != "DONE" {
		t.Errorf("kubelet reads %q, want %q", got, "DONE")
	}
}

// TestLogLinesLongerThanMaxLineSize writes a line longer than two records
// and then one longer than a record that the exit cuts off: every record
// stays within the max line size, nothing is lost, the first line ends
// with its F record and the cut one with a P record.
func TestLogLinesLongerThanMaxLineSize(t *testing.T) {
	env := suite.NewEnv(t)
	const first, second = 2*maxLogLine + 1000, maxLogLine + 7
	records := runToExit(t, env, "longlog", "sh", "-c",
		"head -c "+itoa(first)+" /dev/zero | tr '\\0' x; echo; head -c "+itoa(second)+" /dev/zero | tr '\\0' y")
	want := strings.Repeat("x", first) + "\n" + strings.Repeat("y", second)
	if got := framework.KubeletText(records, "stdout"); got != want {
		t.Errorf("kubelet reads %d bytes, want %d", len(got), len(want))
	}
	full := 0
	for i, r := range records {
		if len(r.Content) > maxLogLine {
			t.Errorf("record %d holds %d bytes, more than %d", i, len(r.Content), maxLogLine)
		}
		if !r.Partial {
			full++
			if !strings.HasSuffix(r.Content, "x") {
				t.Errorf("record %d is F but does not end the line of x", i)
			}
		}
	}
	if full != 1 {
		t.Errorf("%d F records, want 1 (the line of x)", full)
	}
	if n := len(records); n == 0 || !records[n-1].Partial {
		t.Errorf("the line cut off by the exit does not end in a P record")
	}
}

// TestLogContainerKilledMidLine stops a container while its last line has
// no newline: that line is in the log, as a P record after the full ones.
func TestLogContainerKilledMidLine(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("killedlog", logDir)
	podID := runPod(t, env, pod)
	id := createContainer(t, env, podID, pod, containerConfig("killedlog", reg.Ref, "killed.log",
		"sh", "-c", "echo first; printf half; touch /tmp/written; exec sleep 3600"))
	startContainer(t, env, id)
	err := framework.Poll(framework.Context(t), 50*time.Millisecond, func() (bool, error) {
		return execSync(t, env, id, 10, "test", "-e", "/tmp/written").GetExitCode() == 0, nil
	})
	if err != nil {
		t.Fatalf("container %q never wrote its output: %v", id, err)
	}
	if _, err := env.RuntimeService().StopContainer(framework.Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatalf("stop container %q: %v", id, err)
	}
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	path := filepath.Join(logDir, "killed.log")
	var records []framework.LogEntry
	// The pod init writes the rest when the stream ends, which may be
	// just after the exit is reported.
	_ = framework.Poll(framework.Context(t), 50*time.Millisecond, func() (bool, error) {
		records = readRecords(t, path)
		return len(records) >= 2, nil
	})
	checkRecords(t, records, "F first", "P half")
}

// TestLogTerminalAttachedStdin attaches to a container with a terminal and
// stdin, sends a line, and has the container answer without a newline
// and exit: the terminal's echo ("\r\n" endings) reads back as plain
// lines, and the answer cut by the exit as a P record.
func TestLogTerminalAttachedStdin(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("ttylog", logDir)
	podID := runPod(t, env, pod)
	ccfg := containerConfig("ttylog", reg.Ref, "tty.log", "sh", "-c", `read x; printf "got-%s" "$x"`)
	ccfg.Stdin, ccfg.Tty = true, true
	id := createContainer(t, env, podID, pod, ccfg)
	startContainer(t, env, id)

	attachTerminalTyping(t, env, id, "hello\n")
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	path := filepath.Join(logDir, "tty.log")
	var records []framework.LogEntry
	_ = framework.Poll(framework.Context(t), 50*time.Millisecond, func() (bool, error) {
		records = readRecords(t, path)
		return len(records) >= 2, nil
	})
	checkRecords(t, records, "F hello", "P got-hello")
	if got := framework.KubeletText(records, "stdout"); got != "hello\ngot-hello" {
		t.Errorf("kubelet reads %q, want %q", got, "hello\ngot-hello")
	}
}
