package main

import (
	"fmt"
	"time"

	"cubby/cri/server"
	"cubby/rootfs"
)

// config is cubbyd's TOML configuration file. Flags override the paths.
type config struct {
	// Root holds persistent state: metadata, images, writable layers.
	Root string `toml:"root"`
	// State holds runtime state: sockets, pinned namespaces, mounts.
	State string `toml:"state"`
	// Listen is the CRI unix socket.
	Listen string `toml:"listen"`
	// CgroupParent is the parent cgroup of pods that name none.
	CgroupParent string `toml:"cgroup_parent"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text (slog's key=value lines) or json.
	LogFormat  string           `toml:"log_format"`
	Image      imageConfig      `toml:"image"`
	CNI        cniConfig        `toml:"cni"`
	Streaming  streamingConfig  `toml:"streaming"`
	Containers containersConfig `toml:"containers"`
	Metrics    metricsConfig    `toml:"metrics"`
}

type metricsConfig struct {
	// Address is the host:port of the Prometheus /metrics and the /healthz
	// endpoint ("127.0.0.1:9090"); empty turns both off.
	Address string `toml:"address"`
}

// containersConfig bounds what containers may use and what they get when
// they ask for nothing.
type containersConfig struct {
	// MaxConcurrentExecs bounds the execs (ExecSync and streaming) running
	// at once in one container; one more fails with ResourceExhausted.
	MaxConcurrentExecs int `toml:"max_concurrent_execs"`
	// PidsLimit is the pids.max of every container (CRI has no per-container
	// pids limit; kubelet bounds the pod). 0 sets none, the default, as
	// containerd's pids_limit.
	PidsLimit int64 `toml:"pids_limit"`
	// UnsetSeccompProfile is the seccomp profile of containers whose
	// request names none, in seccomp_profile_path form: "" leaves them
	// unconfined (the CRI default), "runtime/default" gives them the
	// default profile, as containerd's unset_seccomp_profile.
	UnsetSeccompProfile string `toml:"unset_seccomp_profile"`
}

type streamingConfig struct {
	// Address is the host:port the exec/attach/port-forward server listens
	// on; port 0 picks a free one. The URLs given to kubelet name it, so it
	// must be reachable from the node (loopback is, and exposes nothing).
	Address string `toml:"address"`
}

type imageConfig struct {
	// InsecureRegistries are reached over plain HTTP ("host:port").
	// Registries on loopback addresses always may be.
	InsecureRegistries []string `toml:"insecure_registries"`
	// Platform is the os/arch picked from multi-platform images.
	Platform string `toml:"platform"`
	// NoProgressTimeout fails a registry request that receives no bytes
	// for this long ("5m"; "0s" disables). Default 5m, like containerd.
	NoProgressTimeout time.Duration `toml:"no_progress_timeout"`
	// MaxConcurrentDownloads bounds the layers of one pull fetched and
	// unpacked at once.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
	// Registries maps an upstream registry host ("registry.k8s.io",
	// "docker.io") to its mirrors:
	//
	//	[image.registries."registry.k8s.io"]
	//	mirrors = ["http://127.0.0.1:5000"]
	//	skip_upstream = true
	Registries map[string]registryConfig `toml:"registries"`
}

type registryConfig struct {
	// Mirrors are tried in order before the upstream:
	// "http://host:port", "https://host" or "host[:port]" (HTTPS).
	Mirrors []string `toml:"mirrors"`
	// SkipUpstream never contacts the upstream registry itself.
	SkipUpstream bool `toml:"skip_upstream"`
}

type cniConfig struct {
	// ConfDir holds CNI network configs; without one the built-in default
	// bridge network is used.
	ConfDir string   `toml:"conf_dir"`
	BinDirs []string `toml:"bin_dirs"`
	// DefaultBridge, DefaultSubnet and DefaultNetworkName shape the
	// built-in default network.
	DefaultBridge      string `toml:"default_bridge"`
	DefaultSubnet      string `toml:"default_subnet"`
	DefaultNetworkName string `toml:"default_network_name"`
}

func defaultConfig() config {
	return config{
		Root:         "/var/lib/cubby",
		State:        "/run/cubby",
		Listen:       "/run/cubby/cubby.sock",
		CgroupParent: "/cubby",
		LogLevel:     "info",
		LogFormat:    "text",
		Image: imageConfig{
			InsecureRegistries:     []string{},
			Platform:               "linux/amd64",
			NoProgressTimeout:      rootfs.DefaultNoProgressTimeout,
			MaxConcurrentDownloads: rootfs.DefaultMaxConcurrentDownloads,
			Registries:             map[string]registryConfig{},
		},
		Streaming: streamingConfig{Address: "127.0.0.1:0"},
		Containers: containersConfig{
			MaxConcurrentExecs: server.DefaultMaxConcurrentExecs,
		},
		CNI: cniConfig{
			ConfDir:            "/etc/cni/net.d",
			BinDirs:            []string{"/opt/cni/bin", "/usr/lib/cni"},
			DefaultBridge:      "cubby0",
			DefaultSubnet:      "10.88.0.0/16",
			DefaultNetworkName: "cubby",
		},
	}
}

// problems lists the values that would bound nothing or name no profile.
func (c containersConfig) problems() []keyProblem {
	var ps []keyProblem
	if c.MaxConcurrentExecs < 1 {
		ps = append(ps, keyProblem{"containers.max_concurrent_execs", fmt.Sprintf("%d: want at least 1", c.MaxConcurrentExecs)})
	}
	if c.PidsLimit < 0 {
		ps = append(ps, keyProblem{"containers.pids_limit", fmt.Sprintf("%d: want 0 (none) or a limit", c.PidsLimit)})
	}
	if err := server.ValidateSeccompProfilePath(c.UnsetSeccompProfile); err != nil {
		ps = append(ps, keyProblem{"containers.unset_seccomp_profile", err.Error()})
	}
	return ps
}
