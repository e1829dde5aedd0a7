package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// HostLinks returns the host's network links by ifindex, read from the
// test process's /sys/class/net.
func HostLinks() (map[int]string, error) {
	dirs, err := filepath.Glob("/sys/class/net/*/ifindex")
	if err != nil {
		return nil, err
	}
	links := map[int]string{}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the link went away while we listed
		}
		idx, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		links[idx] = filepath.Base(filepath.Dir(p))
	}
	return links, nil
}

// InNetns runs a command inside the network namespace at nsPath (a
// /proc/<pid>/ns/net or a pinned netns file) with nsenter, and returns its
// output.
func InNetns(nsPath string, args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=" + nsPath}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nsenter --net=%s %s: %w: %s", nsPath, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// IPv4Addrs returns the IPv4 addresses of dev in the netns at nsPath.
func IPv4Addrs(nsPath, dev string) ([]string, error) {
	out, err := InNetns(nsPath, "ip", "-o", "-4", "addr", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	return parseIPAddrs(out), nil
}

// parseIPAddrs extracts the addresses (without prefix length) from
// `ip -o addr` output: "2: eth0    inet 10.88.0.2/16 brd ... scope global eth0".
func parseIPAddrs(out string) []string {
	var addrs []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				addr, _, _ := strings.Cut(f[i+1], "/")
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

// PeerIndex returns the ifindex of the peer of a veth dev in the netns at
// nsPath — for a pod's eth0, the host-side veth.
func PeerIndex(nsPath, dev string) (int, error) {
	out, err := InNetns(nsPath, "ip", "-o", "link", "show", "dev", dev)
	if err != nil {
		return 0, err
	}
	return parsePeerIndex(out)
}

var peerRE = regexp.MustCompile(`^\d+:\s+[^@:\s]+@if(\d+):`)

// parsePeerIndex reads N from `ip -o link` output "3: eth0@if12: <...>".
func parsePeerIndex(out string) (int, error) {
	m := peerRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return 0, fmt.Errorf("no peer index in %q: %w", strings.TrimSpace(out), ErrNoField)
	}
	return strconv.Atoi(m[1])
}

// removeLink deletes the host link name if it exists.
func removeLink(t testing.TB, name string) {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "delete", "dev", name).CombinedOutput(); err != nil {
		t.Errorf("delete link %s: %v: %s", name, err, out)
	}
}
