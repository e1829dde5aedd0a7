package netcni

import (
	"fmt"
	"net"
	"os"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// Defaults for the built-in network, used when the Config field is empty.
const (
	DefaultBridge      = "cubby0"
	DefaultSubnet      = "10.88.0.0/16"
	DefaultNetworkName = "cubby"
	// DefaultCacheDir is libcni's own default result cache.
	DefaultCacheDir = "/var/lib/cni"
)

// defaultBinDirs are searched for plugin binaries when Config.BinDirs is empty.
var defaultBinDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}

// Config says where network configuration and plugins live, and describes the
// built-in network used when ConfDir holds no configuration.
type Config struct {
	// ConfDir holds *.conflist, *.conf and *.json files; the lexically
	// first one that parses is the pod network. It may not exist.
	ConfDir string
	// BinDirs are searched in order for plugin binaries.
	// Empty means {"/opt/cni/bin", "/usr/lib/cni"}.
	BinDirs []string
	// CacheDir is libcni's cache of ADD results, e.g. <root>/cni/cache.
	// Empty means DefaultCacheDir.
	CacheDir string

	// DefaultBridge is the bridge of the built-in network (max 15 bytes).
	DefaultBridge string
	// DefaultSubnet is the IPv4 (or IPv6) CIDR host-local allocates from.
	DefaultSubnet string
	// DefaultNetworkName names the built-in network; host-local keeps its
	// allocations under <IPAMDataDir>/<name>.
	DefaultNetworkName string
	// IPAMDataDir is host-local's dataDir for the built-in network.
	// Empty means host-local's default, /var/lib/cni/networks.
	IPAMDataDir string
}

// withDefaults returns cfg with empty fields filled in, or an error naming
// the first field that is unusable.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.BinDirs) == 0 {
		cfg.BinDirs = append([]string(nil), defaultBinDirs...)
	} else {
		cfg.BinDirs = append([]string(nil), cfg.BinDirs...)
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = DefaultBridge
	}
	if cfg.DefaultSubnet == "" {
		cfg.DefaultSubnet = DefaultSubnet
	}
	if cfg.DefaultNetworkName == "" {
		cfg.DefaultNetworkName = DefaultNetworkName
	}

	// Linux interface names are at most IFNAMSIZ-1 bytes and cannot
	// contain '/' or whitespace.
	if err := utils.ValidateInterfaceName(cfg.DefaultBridge); err != nil {
		return cfg, fmt.Errorf("default bridge %q: %w: %s", cfg.DefaultBridge, ErrInvalidArgument, err.Msg)
	}
	if _, _, err := net.ParseCIDR(cfg.DefaultSubnet); err != nil {
		return cfg, fmt.Errorf("default subnet %q: %w: %v", cfg.DefaultSubnet, ErrInvalidArgument, err)
	}
	if err := utils.ValidateNetworkName(cfg.DefaultNetworkName); err != nil {
		return cfg, fmt.Errorf("default network name %q: %w: %s", cfg.DefaultNetworkName, ErrInvalidArgument, err.Msg)
	}
	if cfg.DefaultNetworkName == loopbackNetworkName {
		return cfg, fmt.Errorf("default network name %q: %w: reserved (older cubby versions named their loopback network so)", cfg.DefaultNetworkName, ErrInvalidArgument)
	}
	return cfg, nil
}

// newCNI returns the libcni handle for cfg. The exec is set here because
// libcni fills a nil one in lazily, which would race between concurrent
// calls; with it set, the handle only reads its fields.
func (cfg Config) newCNI() *libcni.CNIConfig {
	exec := &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: os.Stderr},
		PluginDecoder: version.PluginDecoder{},
	}
	return libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, exec)
}
