package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// ErrBadLogLine is returned for a line that is not in the CRI log format.
var ErrBadLogLine = errors.New("malformed CRI log line")

// LogEntry is one line of a CRI container log:
// "<RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>".
type LogEntry struct {
	Time    time.Time
	Stream  string
	Partial bool // tag P: the line continues in the next entry
	Content string
}

// ParseLogLine parses one CRI log line (without its newline).
func ParseLogLine(line string) (LogEntry, error) {
	f := bytes.SplitN([]byte(line), []byte{' '}, 4)
	if len(f) != 4 {
		return LogEntry{}, fmt.Errorf("%w: %q", ErrBadLogLine, line)
	}
	ts, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return LogEntry{}, fmt.Errorf("%w: timestamp of %q: %v", ErrBadLogLine, line, err)
	}
	e := LogEntry{Time: ts, Stream: string(f[1]), Content: string(f[3])}
	if e.Stream != "stdout" && e.Stream != "stderr" {
		return LogEntry{}, fmt.Errorf("%w: stream of %q", ErrBadLogLine, line)
	}
	switch string(f[2]) {
	case "P":
		e.Partial = true
	case "F":
	default:
		return LogEntry{}, fmt.Errorf("%w: tag of %q", ErrBadLogLine, line)
	}
	return e, nil
}

// ParseLog parses a CRI log and joins partial entries into the full lines
// they belong to (per stream), so each returned entry is one line the
// container wrote, stamped with the time of its first part. P records
// that no F record ends (a line cut off by the exit, or still being
// written) come last, one Partial entry per stream, as kubelet shows them.
// A trailing record without a newline — still being written — is ignored.
func ParseLog(data []byte) ([]LogEntry, error) {
	var out []LogEntry
	pending := map[string]*LogEntry{}
	var order []string // streams by when their latest P line started
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		e, err := ParseLogLine(string(data[:i]))
		data = data[i+1:]
		if err != nil {
			return nil, err
		}
		if p := pending[e.Stream]; p != nil {
			p.Content += e.Content
			p.Partial = e.Partial
			e = *p
		}
		if e.Partial {
			if pending[e.Stream] == nil { // a new line starts
				order = append(slices.DeleteFunc(order, func(s string) bool { return s == e.Stream }), e.Stream)
			}
			pending[e.Stream] = &e
			continue
		}
		delete(pending, e.Stream)
		out = append(out, e)
	}
	for _, s := range order {
		if p := pending[s]; p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

// ReadLog reads and parses the CRI log at path.
func ReadLog(path string) ([]LogEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := ParseLog(data)
	if err != nil {
		return nil, fmt.Errorf("parse log %s: %w", path, err)
	}
	return entries, nil
}

// ReadLogRecords reads the CRI log at path record by record, without
// joining partial entries: what the runtime wrote, as it wrote it.
func ReadLogRecords(path string) ([]LogEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	for _, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' {
			return nil, fmt.Errorf("%w: log %s ends in a record without newline: %q", ErrBadLogLine, path, line)
		}
		e, err := ParseLogLine(string(line[:len(line)-1]))
		if err != nil {
			return nil, fmt.Errorf("parse log %s: %w", path, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// KubeletText is the output of stream as kubelet reads it back from records
// (`kubectl logs`, a termination message taken from the log): the contents
// in order, each F record followed by a newline, P records joined to what
// follows them.
func KubeletText(records []LogEntry, stream string) string {
	var b bytes.Buffer
	for _, e := range records {
		if e.Stream != stream {
			continue
		}
		b.WriteString(e.Content)
		if !e.Partial {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
