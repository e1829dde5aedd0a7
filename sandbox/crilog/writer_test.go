package crilog

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chunkReader returns its chunks one Read at a time (an empty chunk is a
// Read of 0 bytes), then err (io.EOF if nil).
type chunkReader struct {
	chunks []string
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestCopy(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	stamp := ts.Format(time.RFC3339Nano)
	rec := func(tag, content string) string { return stamp + " stdout " + tag + " " + content }
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		chunks []string
		err    error // the read error after the chunks; nil is EOF
		want   []string
	}{
		{"empty", nil, nil, nil},
		{"empty reads", []string{"", "a", "", "\n", ""}, nil, []string{rec("F", "a")}},
		{"lines", []string{"a\nb\n"}, nil, []string{rec("F", "a"), rec("F", "b")}},
		{"no newline at exit", []string{"DONE"}, nil, []string{rec("P", "DONE")}},
		{"last line without newline", []string{"a\nb"}, nil, []string{rec("F", "a"), rec("P", "b")}},
		{"empty line", []string{"\n"}, nil, []string{rec("F", "")}},
		{"line over reads", []string{"ab", "c\nd", "e"}, nil, []string{rec("F", "abc"), rec("P", "de")}},
		{"crlf", []string{"a\r\nb\r\n"}, nil, []string{rec("F", "a"), rec("F", "b")}},
		{"crlf over reads", []string{"a\r", "\n"}, nil, []string{rec("F", "a")}},
		{"lone cr kept", []string{"a\rb\n"}, nil, []string{rec("F", "a\rb")}},
		{"cr at exit kept", []string{"a\r"}, nil, []string{rec("P", "a\r")}},
		{"only the last cr stripped", []string{"a\r\r\n"}, nil, []string{rec("F", "a\r")}},
		{"killed mid-line (terminal EIO)", []string{"a\nhalf"}, syscall.EIO, []string{rec("F", "a"), rec("P", "half")}},
		{"line of maxLine", []string{x(maxLine) + "\n"}, nil, []string{rec("F", x(maxLine))}},
		{"line of maxLine with crlf", []string{x(maxLine) + "\r\n"}, nil, []string{rec("F", x(maxLine))}},
		{"line of maxLine, crlf in a later read", []string{x(maxLine) + "\r", "\n"}, nil, []string{rec("F", x(maxLine))}},
		{"line of maxLine, cr then more", []string{x(maxLine) + "\r", "y\n"}, nil, []string{rec("P", x(maxLine)), rec("F", "\ry")}},
		{"line of maxLine+1", []string{x(maxLine+1) + "\n"}, nil, []string{rec("P", x(maxLine)), rec("F", "x")}},
		{"line of maxLine+1 in reads", []string{x(maxLine), "x", "\n"}, nil, []string{rec("P", x(maxLine)), rec("F", "x")}},
		{"long line without newline at exit", []string{x(2*maxLine + 5)}, nil, []string{
			rec("P", x(maxLine)), rec("P", x(maxLine)), rec("P", x(5)),
		}},
		{"line of maxLine without newline at exit", []string{x(maxLine)}, nil, []string{rec("P", x(maxLine))}},
		{"long line killed", []string{x(maxLine + 3)}, syscall.EIO, []string{rec("P", x(maxLine)), rec("P", x(3))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := NewFile(&out)
			f.now = func() time.Time { return ts }
			err := f.Copy(Stdout, &chunkReader{chunks: tt.chunks, err: tt.err})
			if !errors.Is(err, tt.err) {
				t.Fatalf("Copy = %v, want %v", err, tt.err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				got = nil
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %.200q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("record %d = %.80q, want %.80q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// readBack is what kubelet makes of a CRI log (kuberuntime/logs): P
// contents joined until an F, which gets a newline.
func readBack(t *testing.T, log string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.SplitAfter(log, "\n") {
		if r == "" {
			continue
		}
		fields := strings.SplitN(strings.TrimSuffix(r, "\n"), " ", 4)
		if len(fields) != 4 {
			t.Fatalf("malformed record %q", r)
		}
		if _, err := time.Parse(time.RFC3339Nano, fields[0]); err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		b.WriteString(fields[3])
		switch fields[2] {
		case "F":
			b.WriteByte('\n')
		case "P":
			if len(fields[3]) > maxLine {
				t.Errorf("P record of %d bytes", len(fields[3]))
			}
		default:
			t.Fatalf("record %q: tag %q", r, fields[2])
		}
	}
	return b.String()
}

// TestCopyLosesNothing writes random output in random reads and checks
// that kubelet reads back exactly what was written ("\r\n" read as "\n").
func TestCopyLosesNothing(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte("ab\r\n")
	for i := 0; i < 200; i++ {
		in := make([]byte, rng.Intn(3*maxLine))
		for j := range in {
			// Mostly letters, so some lines run past maxLine.
			if rng.Intn(4000) == 0 {
				in[j] = alphabet[2+rng.Intn(2)]
			} else {
				in[j] = alphabet[rng.Intn(2)]
			}
		}
		var chunks []string
		for rest := string(in); rest != ""; {
			n := min(len(rest), rng.Intn(maxLine+maxLine/2))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		var out bytes.Buffer
		if err := NewFile(&out).Copy(Stderr, &chunkReader{chunks: chunks}); err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(string(in), "\r\n", "\n")
		if got := readBack(t, out.String()); got != want {
			t.Fatalf("case %d: read back %d bytes, want %d", i, len(got), len(want))
		}
	}
}

// TestCopyRecordsAreWholeWrites checks that each record reaches the file
// in one Write, so stdout and stderr records never interleave.
func TestCopyRecordsAreWholeWrites(t *testing.T) {
	var w countingWriter
	if err := NewFile(&w).Copy(Stdout, strings.NewReader("a\nb\nc")); err != nil {
		t.Fatal(err)
	}
	if w.writes != 3 {
		t.Errorf("%d writes for 3 records", w.writes)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) {
	if !bytes.HasSuffix(p, []byte{'\n'}) {
		return 0, errors.New("record without newline")
	}
	w.writes++
	return len(p), nil
}
