package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{status.Error(codes.Unimplemented, "no exec"), StatusUnimplemented},
		{errors.New("boom"), "error: boom"},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestReportUnimplemented checks that a section the runtime lacks shows as
// n/a in the table and the JSON while the others keep their numbers.
func TestReportUnimplemented(t *testing.T) {
	s := Summarize([]time.Duration{time.Millisecond, 2 * time.Millisecond})
	r := &Report{
		RuntimeName: "fake", N: 2, Concurrency: 1,
		Exec: Call{Name: "ExecSync", Status: StatusUnimplemented},
		List: ListResult{Pods: 2, Calls: []Call{
			{Name: "ListPodSandbox", Latency: &s},
			{Name: "ListContainerStats", Status: StatusUnimplemented},
		}},
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecSync", "ListContainerStats", StatusUnimplemented, "ListPodSandbox (2)", "2.00 ms"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table misses %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Exec struct {
			Status string `json:"status"`
		} `json:"exec_sync"`
		List struct {
			Calls []struct {
				Name    string          `json:"name"`
				Status  string          `json:"status"`
				Latency json.RawMessage `json:"latency"`
			} `json:"calls"`
		} `json:"list"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Exec.Status != StatusUnimplemented || back.List.Calls[1].Status != StatusUnimplemented || back.List.Calls[0].Latency == nil {
		t.Errorf("json: %s", js.String())
	}
}
