package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of two", ms(1, 2), 50, time.Millisecond},
		{"p50 of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"p99 of ten is max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p90 of ten", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p99 of hundred", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is max", ms(1, 5), 100, 5 * time.Millisecond},
		{"p0 clamps to min", ms(3, 5), 0, 3 * time.Millisecond},
		{"p above 100 clamps to max", ms(3, 5), 150, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	got := Summarize(in)
	want := Summary{Count: 5, P50: 3, P90: 5, P99: 5, Max: 5, Mean: 3}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 5 {
		t.Errorf("Summarize sorted its input: %v", in)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) is not zero")
	}
}

func TestSummaryJSON(t *testing.T) {
	b, err := Summary{Count: 2, P50: 1500 * time.Microsecond, Max: 2 * time.Second}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"count":2,"p50_ms":1.5,"p90_ms":0,"p99_ms":0,"max_ms":2000,"mean_ms":0}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
