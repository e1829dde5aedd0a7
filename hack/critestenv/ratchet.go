package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// specResult is one critest spec's outcome, from ginkgo's JSON report.
type specResult struct {
	Name    string // container texts and the It text, space-separated
	State   string // passed, failed, skipped, pending, panicked, timedout, …
	Failure string // the failure message, if any
}

// ginkgoReport is the part of ginkgo's --json-report format read here.
type ginkgoReport []struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		LeafNodeType            string
		State                   string
		Failure                 struct {
			Message string
		}
	}
}

// readReport returns the It specs of a ginkgo JSON report, in run order.
func readReport(r io.Reader) ([]specResult, error) {
	var rep ginkgoReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("decode ginkgo report: %w", err)
	}
	var out []specResult
	for _, suite := range rep {
		for _, s := range suite.SpecReports {
			if s.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			out = append(out, specResult{Name: name, State: s.State, Failure: s.Failure.Message})
		}
	}
	return out, nil
}

// counts is the run's tally.
type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

func tally(results []specResult) counts {
	var c counts
	for _, r := range results {
		switch r.State {
		case "passed":
			c.passed++
		case "skipped", "pending":
			c.skipped++
		default:
			c.failed++
		}
	}
	return c
}

// readRatchet reads the list of specs that must pass: one full spec name a
// line; blank lines and lines starting with # are ignored.
func readRatchet(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ratchet list: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	return names, sc.Err()
}

// verdict compares a run with the ratchet list.
type verdict struct {
	// regressed are listed specs that did not pass, with their state.
	regressed []specResult
	// missing are listed specs the run does not have (renamed, or
	// filtered out by --focus/--skip).
	missing []string
	// newlyPassing passed but are not listed yet.
	newlyPassing []string
}

func (v verdict) ok() bool { return len(v.regressed) == 0 && len(v.missing) == 0 }

// judge compares results with the ratchet. A partial run (critest's
// focus or skip flags) judges only the listed specs it ran.
func judge(results []specResult, ratchet []string, partial bool) verdict {
	byName := make(map[string]specResult, len(results))
	for _, r := range results {
		byName[r.Name] = r
	}
	listed := make(map[string]bool, len(ratchet))
	var v verdict
	for _, name := range ratchet {
		listed[name] = true
		r, ok := byName[name]
		switch {
		case partial && (!ok || r.State == "skipped"):
		case !ok:
			v.missing = append(v.missing, name)
		case r.State != "passed":
			v.regressed = append(v.regressed, r)
		}
	}
	for _, r := range results {
		if r.State == "passed" && !listed[r.Name] {
			v.newlyPassing = append(v.newlyPassing, r.Name)
		}
	}
	return v
}

// writeRatchet rewrites the list as the union of its specs and the ones
// that passed now, sorted, keeping its leading comment block.
func writeRatchet(path string, results []specResult) error {
	old, err := readRatchet(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var header []string
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			header = append(header, line)
		}
	}
	names := slices.Clone(old)
	for _, r := range results {
		if r.State == "passed" {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var b strings.Builder
	for _, h := range header {
		b.WriteString(h + "\n")
	}
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
