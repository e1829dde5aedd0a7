package crilog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCopy(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	stamp := ts.Format(time.RFC3339Nano)
	long := strings.Repeat("x", maxLine+10)
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"lines", "a\nb\n", []string{stamp + " stdout F a", stamp + " stdout F b"}},
		{"no trailing newline", "a\nb", []string{stamp + " stdout F a", stamp + " stdout F b"}},
		{"empty line", "\n", []string{stamp + " stdout F "}},
		{"long line split", long + "\n", []string{
			stamp + " stdout P " + long[:maxLine],
			stamp + " stdout F " + long[maxLine:],
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := NewFile(&out)
			f.now = func() time.Time { return ts }
			if err := f.Copy(Stdout, strings.NewReader(tt.in)); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				got = nil
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("record %d = %.80q, want %.80q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
