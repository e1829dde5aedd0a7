package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sampleReport = `[{"SpecReports":[
 {"ContainerHierarchyTexts":["[k8s.io] Image Manager"],"LeafNodeText":"public image should be pulled","LeafNodeType":"It","State":"passed"},
 {"ContainerHierarchyTexts":["[k8s.io] Streaming","runtime should support streaming interfaces"],"LeafNodeText":"runtime should support exec","LeafNodeType":"It","State":"failed","Failure":{"Message":"Unimplemented"}},
 {"ContainerHierarchyTexts":[],"LeafNodeText":"","LeafNodeType":"SynchronizedBeforeSuite","State":"passed"},
 {"ContainerHierarchyTexts":["[k8s.io] Windows"],"LeafNodeText":"only on windows","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[k8s.io] Security"],"LeafNodeText":"times out","LeafNodeType":"It","State":"timedout"}
]}]`

func TestReadReportAndTally(t *testing.T) {
	results, err := readReport(strings.NewReader(sampleReport))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Name)
	}
	want := []string{
		"[k8s.io] Image Manager public image should be pulled",
		"[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec",
		"[k8s.io] Windows only on windows",
		"[k8s.io] Security times out",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("spec names %q, want %q (suite nodes are not specs)", names, want)
	}
	if got := tally(results).String(); got != "1 passed, 2 failed, 1 skipped" {
		t.Errorf("tally = %q", got)
	}
}

func TestJudge(t *testing.T) {
	results, err := readReport(strings.NewReader(sampleReport))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                      string
		ratchet                   []string
		partial                   bool
		ok                        bool
		regressed, missing, newly int
	}{
		{"empty list: all passes are new", nil, false, true, 0, 0, 1},
		{"listed and passed", []string{"[k8s.io] Image Manager public image should be pulled"}, false, true, 0, 0, 0},
		{"listed and failed", []string{"[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec"}, false, false, 1, 0, 1},
		{"listed and skipped", []string{"[k8s.io] Windows only on windows"}, false, false, 1, 0, 1},
		{"listed and absent", []string{"[k8s.io] Renamed spec"}, false, false, 0, 1, 1},
		{"partial run: skipped and absent are not judged", []string{"[k8s.io] Windows only on windows", "[k8s.io] Renamed spec"}, true, true, 0, 0, 1},
		{"partial run: a failure still counts", []string{"[k8s.io] Security times out"}, true, false, 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(results, tc.ratchet, tc.partial)
			if v.ok() != tc.ok || len(v.regressed) != tc.regressed || len(v.missing) != tc.missing || len(v.newlyPassing) != tc.newly {
				t.Errorf("verdict ok=%v regressed=%d missing=%d new=%d, want %v %d %d %d",
					v.ok(), len(v.regressed), len(v.missing), len(v.newlyPassing), tc.ok, tc.regressed, tc.missing, tc.newly)
			}
		})
	}
}

func TestWriteRatchetKeepsHeaderAndOldSpecs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passing.txt")
	if err := os.WriteFile(path, []byte("# header\n# two\nz old spec\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	results := []specResult{{Name: "a new spec", State: "passed"}, {Name: "failing", State: "failed"}, {Name: "z old spec", State: "passed"}}
	if err := writeRatchet(path, results); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# header\n# two\na new spec\nz old spec\n"; string(b) != want {
		t.Errorf("ratchet file:\n%s\nwant:\n%s", b, want)
	}
	names, err := readRatchet(path)
	if err != nil || !slices.Equal(names, []string{"a new spec", "z old spec"}) {
		t.Errorf("readRatchet = %q, %v", names, err)
	}
}
