package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StatusNotRun marks a section that did not run because an earlier one
// failed or the run was interrupted.
const StatusNotRun = "not run"

// StatusUnimplemented marks a section or call the runtime does not
// implement.
const StatusUnimplemented = "n/a (Unimplemented)"

// Report is the result of one bench run. Status fields are empty when the
// measurement worked, StatusUnimplemented, or "error: ...".
type Report struct {
	Endpoint       string    `json:"endpoint"`
	RuntimeName    string    `json:"runtime_name"`
	RuntimeVersion string    `json:"runtime_version"`
	Image          string    `json:"image"`
	N              int       `json:"n"`
	Concurrency    int       `json:"concurrency"`
	RunID          string    `json:"run_id"`
	Started        time.Time `json:"started"`

	PodStart PodStartResult `json:"pod_start"`
	Burst    BurstResult    `json:"burst"`
	Idle     IdleResult     `json:"idle"`
	Exec     Call           `json:"exec_sync"`
	List     ListResult     `json:"list"`
}

// Call is the latency of one CRI call (or of a sequence, end to end).
type Call struct {
	Name    string   `json:"name"`
	Status  string   `json:"status,omitempty"`
	Latency *Summary `json:"latency,omitempty"`
}

// PodStartResult is section 1: N sequential pods started, then torn down.
type PodStartResult struct {
	Status   string `json:"status,omitempty"`
	Start    []Call `json:"start"`
	Teardown []Call `json:"teardown"`
}

// BurstResult is section 2: N pods started Concurrency at a time.
type BurstResult struct {
	Status      string   `json:"status,omitempty"`
	Pods        int      `json:"pods"`
	Concurrency int      `json:"concurrency"`
	Running     int      `json:"running"`
	TotalMS     float64  `json:"total_ms"`
	PodsPerSec  float64  `json:"pods_per_sec"`
	PerPod      *Summary `json:"per_pod,omitempty"`
	TeardownMS  float64  `json:"teardown_ms"`
}

// IdleResult is section 3: the cost of the runtime's own processes with
// Pods pods running and idle.
type IdleResult struct {
	Status             string         `json:"status,omitempty"`
	Pods               int            `json:"pods"`
	Processes          map[string]int `json:"processes"` // comm -> count
	RSSTotal           uint64         `json:"rss_total_bytes"`
	PSSTotal           uint64         `json:"pss_total_bytes"`
	RSSPerPod          uint64         `json:"rss_per_pod_bytes"`
	PSSPerPod          uint64         `json:"pss_per_pod_bytes"`
	DaemonPID          int            `json:"daemon_pid"`
	DaemonRSSBefore    uint64         `json:"daemon_rss_before_bytes"`
	DaemonRSSAfter     uint64         `json:"daemon_rss_after_bytes"`
	DaemonGrowthPerPod int64          `json:"daemon_rss_growth_per_pod_bytes"`
	IdleSeconds        float64        `json:"idle_seconds"`
	RuntimeCPUPercent  float64        `json:"runtime_cpu_percent"` // of one CPU
	DaemonCPUPercent   float64        `json:"daemon_cpu_percent"`  // of one CPU
}

// ListResult is section 5: List calls with Pods pods running.
type ListResult struct {
	Status string `json:"status,omitempty"`
	Pods   int    `json:"pods"`
	Calls  []Call `json:"calls"`
}

// statusOf turns a section's error into its Status.
func statusOf(err error) string {
	switch {
	case err == nil:
		return ""
	case status.Code(err) == codes.Unimplemented:
		return StatusUnimplemented
	default:
		return "error: " + err.Error()
	}
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// WriteTable prints r for people.
func (r *Report) WriteTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	// The value is not tab-terminated: it starts in the p50 column without
	// widening it.
	kv := func(name, value string) { fmt.Fprintf(w, "%s\t%9s\n", name, value) }
	fmt.Fprintf(out, "cubby bench: %s %s at %s, image %s, n=%d, concurrency %d\n\n",
		r.RuntimeName, r.RuntimeVersion, r.Endpoint, r.Image, r.N, r.Concurrency)
	head := fmt.Sprintf("\t%9s\t%9s\t%9s\t%9s\t\n", "p50", "p90", "p99", "max")

	p("1. POD START (%d sequential pods)%s", r.N, head)
	if r.PodStart.Status != "" {
		kv("", r.PodStart.Status)
	}
	writeCalls(w, r.PodStart.Start)
	writeCalls(w, r.PodStart.Teardown)
	p("\t\n")

	b := r.Burst
	p("2. BURST (%d pods, concurrency %d)\t\n", b.Pods, b.Concurrency)
	if b.Status != "" {
		kv("", b.Status)
	} else {
		kv("all running after", fmt.Sprintf("%.0f ms", b.TotalMS))
		kv("throughput", fmt.Sprintf("%.1f pods/s", b.PodsPerSec))
		kv("running at the end", fmt.Sprintf("%d/%d", b.Running, b.Pods))
		if b.PerPod != nil {
			p("\t%9s\t%9s\t%9s\t%9s\t\n", "p50", "p90", "p99", "max")
			writeCalls(w, []Call{{Name: "per pod end to end", Latency: b.PerPod}})
		}
		kv(fmt.Sprintf("teardown (concurrency %d)", b.Concurrency), fmt.Sprintf("%.0f ms", b.TeardownMS))
	}
	p("\t\n")

	id := r.Idle
	p("3. IDLE COST (%d pods, %.0fs idle)\t\n", id.Pods, id.IdleSeconds)
	if id.Status != "" {
		kv("", id.Status)
	} else {
		kv("runtime processes", procSummary(id.Processes))
		kv("RSS per pod", size(int64(id.RSSPerPod)))
		kv("PSS per pod", size(int64(id.PSSPerPod)))
		kv(fmt.Sprintf("daemon RSS (pid %d)", id.DaemonPID), size(int64(id.DaemonRSSBefore))+" -> "+size(int64(id.DaemonRSSAfter)))
		kv("daemon RSS growth per pod", size(id.DaemonGrowthPerPod))
		kv("idle CPU, runtime processes", fmt.Sprintf("%.2f%% of a CPU", id.RuntimeCPUPercent))
		kv("idle CPU, daemon", fmt.Sprintf("%.2f%% of a CPU", id.DaemonCPUPercent))
	}
	p("\t\n")

	p("4. EXECSYNC (true)%s", head)
	writeCalls(w, []Call{r.Exec})
	p("\t\n")

	p("5. LIST LATENCY (%d pods running)%s", r.List.Pods, head)
	if r.List.Status != "" {
		kv("", r.List.Status)
	}
	writeCalls(w, r.List.Calls)
	return w.Flush()
}

func writeCalls(w io.Writer, calls []Call) {
	for _, c := range calls {
		switch {
		case c.Status != "":
			fmt.Fprintf(w, "%s\t%9s\n", c.Name, c.Status)
		case c.Latency == nil || c.Latency.Count == 0:
			fmt.Fprintf(w, "%s\t%9s\n", c.Name, "-")
		default:
			l := c.Latency
			name := fmt.Sprintf("%s (%d)", c.Name, l.Count)
			fmt.Fprintf(w, "%s\t%9s\t%9s\t%9s\t%9s\t\n", name, dur(l.P50), dur(l.P90), dur(l.P99), dur(l.Max))
		}
	}
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", ms(d))
	default:
		return fmt.Sprintf("%.2f ms", ms(d))
	}
}

func size(b int64) string {
	neg := ""
	if b < 0 {
		neg, b = "-", -b
	}
	switch {
	case b >= 10<<20:
		return fmt.Sprintf("%s%.0f MiB", neg, float64(b)/(1<<20))
	case b >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", neg, float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%s%.0f KiB", neg, float64(b)/(1<<10))
	}
}

func procSummary(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s x%d", name, m[name]))
	}
	return strings.Join(parts, ", ")
}
