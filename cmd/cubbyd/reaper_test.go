package main

import (
	"log/slog"
	"testing"
)

func TestStatFields(t *testing.T) {
	for _, tc := range []struct {
		name, line    string
		state         string
		ppid, session int
		ok            bool
	}{
		{"plain", "42 (sleep) Z 7 42 42 0 -1", "Z", 7, 42, true},
		{"comm with spaces and parens", "42 (a b) (c)) S 1 5 9 0", "S", 1, 9, true},
		{"no comm end", "42 (sleep Z 7 42 42", "", 0, 0, false},
		{"short", "42 (sleep) Z 7", "", 0, 0, false},
		{"not a number", "42 (sleep) Z x 42 42", "Z", 0, 42, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, ppid, session, ok := statFields(tc.line)
			if ok != tc.ok || (ok && (state != tc.state || ppid != tc.ppid || session != tc.session)) {
				t.Errorf("statFields(%q) = %q %d %d %v, want %q %d %d %v", tc.line, state, ppid, session, ok, tc.state, tc.ppid, tc.session, tc.ok)
			}
		})
	}
}

func TestFaultHook(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Setenv(faultEnv, "")
	if faultHook(log) != nil {
		t.Error("fault hook set without " + faultEnv)
	}
	t.Setenv(faultEnv, "run-pod-sandbox/network")
	hook := faultHook(log)
	if hook == nil {
		t.Fatal("no fault hook with " + faultEnv + " set")
	}
	hook("run-pod-sandbox/cgroups") // another point: returns
}
