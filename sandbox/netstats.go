package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// InterfaceStats are the counters of one network interface of a pod.
type InterfaceStats struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// PodNetworkStats returns the counters of the interfaces in pod id's
// network namespace, loopback left out, read through its pod init (pid,
// as recorded at start) from /proc/<pid>/net/dev. A pod init that is gone
// has no namespace to read: nil, no error.
func (r *Runtime) PodNetworkStats(id string, pid int) ([]InterfaceStats, error) {
	if pid <= 0 || !isPodInit(pid, id) {
		return nil, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("network stats of pod %q: %w", id, err)
	}
	// The pid may have ended (and been reused) during the read.
	if !isPodInit(pid, id) {
		return nil, nil
	}
	stats, err := parseNetDev(b)
	if err != nil {
		return nil, fmt.Errorf("network stats of pod %q: %w", id, err)
	}
	return stats, nil
}

// parseNetDev parses /proc/net/dev: two header lines, then per interface
// "name: 8 receive counters 8 transmit counters".
func parseNetDev(b []byte) ([]InterfaceStats, error) {
	var out []InterfaceStats
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no interface name", line+1)
		}
		name = strings.TrimSpace(name)
		if name == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("interface %s: %d counters, want 16", name, len(f))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("interface %s: %w", name, err)
			}
			v[i] = n
		}
		out = append(out, InterfaceStats{
			Name:    name,
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
	}
	return out, sc.Err()
}
