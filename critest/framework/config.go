package framework

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"

	"github.com/BurntSushi/toml"
)

// DaemonConfig is the subset of cubbyd's TOML config that the suite sets for
// a private daemon; everything else keeps cubbyd's defaults.
type DaemonConfig struct {
	Root         string        `toml:"root"`
	State        string        `toml:"state"`
	Listen       string        `toml:"listen"`
	CgroupParent string        `toml:"cgroup_parent"`
	LogLevel     string        `toml:"log_level,omitempty"`
	Image        ImageConfig   `toml:"image"`
	CNI          CNIConfig     `toml:"cni"`
	Metrics      MetricsConfig `toml:"metrics,omitempty"`
	// Containers is the [containers] table; nil leaves cubbyd's defaults
	// (and writes no table).
	Containers *ContainersConfig `toml:"containers,omitempty"`
	// Env is added to the daemon's environment ("KEY=value"); it is not
	// part of the config file and may change between restarts.
	Env []string `toml:"-"`
}

// WithEnv is a NewEnv option that adds "KEY=value" settings to the
// private daemon's environment (e.g. CUBBY_TEST_FAULT).
func WithEnv(kv ...string) func(*DaemonConfig) {
	return func(c *DaemonConfig) { c.Env = append(c.Env, kv...) }
}

// WithMetrics is a NewEnv option that serves the private daemon's /metrics
// and /healthz on addr ("127.0.0.1:0": a free port; MetricsAddress finds it).
func WithMetrics(addr string) func(*DaemonConfig) {
	return func(c *DaemonConfig) { c.Metrics.Address = addr }
}

// MetricsConfig is the [metrics] table.
type MetricsConfig struct {
	Address string `toml:"address,omitempty"`
}

// ImageConfig is the [image] table.
type ImageConfig struct {
	InsecureRegistries []string                  `toml:"insecure_registries,omitempty"`
	Registries         map[string]RegistryConfig `toml:"registries,omitempty"`
}

// RegistryConfig is an [image.registries."host"] table.
type RegistryConfig struct {
	Mirrors      []string `toml:"mirrors,omitempty"`
	SkipUpstream bool     `toml:"skip_upstream,omitempty"`
}

// ContainersConfig is the [containers] table.
type ContainersConfig struct {
	MaxConcurrentExecs  int    `toml:"max_concurrent_execs,omitzero"`
	PidsLimit           int64  `toml:"pids_limit,omitzero"`
	UnsetSeccompProfile string `toml:"unset_seccomp_profile,omitempty"`
}

// WithContainers is a NewEnv option that sets the private daemon's
// [containers] table.
func WithContainers(c ContainersConfig) func(*DaemonConfig) {
	return func(d *DaemonConfig) { d.Containers = &c }
}

// CNIConfig is the [cni] table.
type CNIConfig struct {
	ConfDir            string   `toml:"conf_dir"`
	BinDirs            []string `toml:"bin_dirs,omitempty"`
	DefaultBridge      string   `toml:"default_bridge"`
	DefaultSubnet      string   `toml:"default_subnet"`
	DefaultNetworkName string   `toml:"default_network_name"`
}

// WriteFile writes the config as TOML to path.
func (c DaemonConfig) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("encode daemon config: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write daemon config: %w", err)
	}
	return nil
}

// RandomHex returns n random bytes as 2n lower-case hex digits.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// randomSubnet picks a /24 in 10.200.0.0-10.255.255.0 that no host interface
// address falls into.
func randomSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("list host addresses: %w", err)
	}
	for range 100 {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		_, subnet, err := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%56, b[1]))
		if err != nil {
			return "", err
		}
		if !overlaps(subnet, addrs) {
			return subnet.String(), nil
		}
	}
	return "", fmt.Errorf("no free /24 in 10.200.0.0/13")
}

func overlaps(subnet *net.IPNet, addrs []net.Addr) bool {
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
			return true
		}
	}
	return false
}
