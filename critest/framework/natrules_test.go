package framework

import (
	"slices"
	"testing"
)

func TestSplitRule(t *testing.T) {
	rule := `POSTROUTING -s 10.1.0.2/32 -m comment --comment "name: \"critest-1\" id: \"ab\"" -j CNI-09921a3c8c40aa5442e2059e`
	want := []string{"POSTROUTING", "-s", "10.1.0.2/32", "-m", "comment", "--comment", `name: "critest-1" id: "ab"`, "-j", "CNI-09921a3c8c40aa5442e2059e"}
	if got := splitRule(rule); !slices.Equal(got, want) {
		t.Errorf("splitRule:\n got %q\nwant %q", got, want)
	}
	if m := natChain.FindStringSubmatch(rule); m == nil || m[1] != "CNI-09921a3c8c40aa5442e2059e" {
		t.Errorf("chain of %q: %v", rule, m)
	}
}
