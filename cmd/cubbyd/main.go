// Command cubbyd is the cubby CRI runtime daemon: it serves the CRI
// RuntimeService and ImageService on a unix socket for kubelet and crictl.
// On SIGHUP it reloads what of its configuration can change at runtime
// (reload.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
	"cubby/cmd/internal/buildinfo"
	"cubby/cri/imageimport"
	"cubby/cri/server"
	"cubby/cri/store"
	"cubby/netcni"
	"cubby/rootfs"
	"cubby/sandbox"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cubbyd: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configPath  = flag.String("config", defaultConfigPath, "TOML config file; drop-ins in config.d/*.toml next to it apply on top, in lexical order")
		listen      = flag.String("listen", "", "CRI unix socket (overrides config)")
		root        = flag.String("root", "", "persistent state directory (overrides config)")
		state       = flag.String("state", "", "runtime state directory (overrides config)")
		printDef    = flag.Bool("print-default-config", false, "print the default config and exit")
		printConfig = flag.Bool("print-config", false, "print the merged config, each setting with the file that set it, and exit")
		configCheck = flag.Bool("config-check", false, "validate the config files and exit; every error names its file, line and key")
		showVersion = flag.Bool("version", false, "print the version, git commit and Go version and exit")
	)
	flag.Parse()
	if *showVersion {
		_, err := fmt.Println("cubbyd", buildinfo.Get())
		return err
	}
	if *printDef {
		if err := toml.NewEncoder(os.Stdout).Encode(defaultConfig()); err != nil {
			return err
		}
		_, err := fmt.Print(registryExample)
		return err
	}
	load := func() (*configSet, error) {
		return loadConfigSet(*configPath, flagSet("config"), map[string]string{"listen": *listen, "root": *root, "state": *state})
	}
	cs, err := load()
	switch {
	case *configCheck && err == nil:
		_, err = fmt.Printf("configuration OK: defaults, %s\n", strings.Join(append(cs.files, "flags"), ", "))
		return err
	case *printConfig && err == nil:
		return cs.print(os.Stdout)
	case err != nil:
		return err
	}
	// SIGHUP is caught from here on, so that one sent while cubbyd starts
	// up reloads once it is up instead of killing it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg := cs.cfg
	logs := newLogSink(logLevel(cfg.LogLevel), cfg.LogFormat, os.Stderr, isJournalStream(os.Stderr, os.Getenv("JOURNAL_STREAM")))
	log := logs.logger()
	sd, err := notifierFromEnv()
	if err != nil {
		return err
	}

	// The metrics listener opens first: a bad address fails start-up
	// before anything is made.
	var metricsLn net.Listener
	if cfg.Metrics.Address != "" {
		if metricsLn, err = listenMetrics(cfg.Metrics.Address); err != nil {
			return err
		}
		defer metricsLn.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := checkKernel(log, kernelFeatures()); err != nil {
		return err
	}
	adoptOrphans(ctx, log)
	d, err := newDaemon(cfg, logs, sd)
	if err != nil {
		return err
	}
	defer d.close()
	go d.reloadOn(ctx, hup, load)
	return d.serve(ctx, metricsLn)
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// registryExample shows the per-registry keys, which have no default.
const registryExample = `
# Per-registry settings (none by default), e.g. an air-gapped node:
# [image.registries."registry.k8s.io"]
#   mirrors = ["http://127.0.0.1:5000"]  # tried in order
#   skip_upstream = true                 # never contact registry.k8s.io itself
`

// daemon is cubbyd wired together.
type daemon struct {
	// cfg is the configuration cubbyd started with.
	cfg config
	// mu guards live, the configuration in effect, which a reload changes.
	mu     sync.Mutex
	live   config
	log    *slog.Logger
	logs   *logSink // the logger's level and format, which a reload sets
	db     *store.DB
	images *rootfs.Store
	rt     *sandbox.Runtime
	srv    *server.Server
	sd     *notifier // systemd's notify socket, when run by a Type=notify unit
	// metricsReg and metrics are nil when [metrics] address is empty.
	metricsReg *prometheus.Registry
	metrics    *server.Metrics
}

func newDaemon(cfg config, logs *logSink, sd *notifier) (d *daemon, err error) {
	log := logs.logger()
	d = &daemon{cfg: cfg, live: cfg, log: log, logs: logs, sd: sd}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	for _, dir := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	podBinary, err := siblingBinary("cubby-pod")
	if err != nil {
		return nil, err
	}
	fault, err := faultHook(log)
	if err != nil {
		return nil, err
	}
	if d.db, err = store.Open(filepath.Join(cfg.Root, "meta.db")); err != nil {
		return nil, err
	}
	noProgress := cfg.Image.NoProgressTimeout
	if noProgress == 0 {
		noProgress = -1 // "0s" in the config disables the timeout
	}
	var pulls rootfs.PullObserver
	if cfg.Metrics.Address != "" {
		if d.metricsReg, err = newMetricsRegistry(); err != nil {
			return nil, err
		}
		pm, err := newPullMetrics(d.metricsReg)
		if err != nil {
			return nil, err
		}
		pulls = pm
	}
	if d.images, err = rootfs.Open(rootfs.Config{
		Root:                   filepath.Join(cfg.Root, "images"),
		InsecureRegistries:     cfg.Image.InsecureRegistries,
		Platform:               cfg.Image.Platform,
		Registries:             storeRegistries(cfg),
		NoProgressTimeout:      noProgress,
		MaxConcurrentDownloads: cfg.Image.MaxConcurrentDownloads,
		Logger:                 log,
		PullObserver:           pulls,
		Fault:                  fault,
	}); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	network, err := netcni.New(netcni.Config{
		ConfDir:            cfg.CNI.ConfDir,
		BinDirs:            cfg.CNI.BinDirs,
		CacheDir:           filepath.Join(cfg.Root, "cni", "cache"),
		DefaultBridge:      cfg.CNI.DefaultBridge,
		DefaultSubnet:      cfg.CNI.DefaultSubnet,
		DefaultNetworkName: cfg.CNI.DefaultNetworkName,
	})
	if err != nil {
		return nil, fmt.Errorf("set up CNI: %w", err)
	}
	cgroups, err := cgroupmgr.New()
	if err != nil {
		return nil, fmt.Errorf("set up cgroups: %w", err)
	}
	rt, err := sandbox.New(cfg.State, podBinary)
	if err != nil {
		return nil, err
	}
	d.rt = rt
	if d.metricsReg != nil {
		if d.metrics, err = server.NewMetrics(d.metricsReg); err != nil {
			return nil, fmt.Errorf("register CRI metrics: %w", err)
		}
	}
	d.srv, err = server.New(server.Config{
		DefaultCgroupParent: cfg.CgroupParent,
		Version:             buildinfo.Get().Version,
		Fault:               fault,
		MaxConcurrentExecs:  cfg.Containers.MaxConcurrentExecs,
		PidsLimit:           cfg.Containers.PidsLimit,
		UnsetSeccompProfile: cfg.Containers.UnsetSeccompProfile,
		StatusInfo:          d.statusInfo,
	}, server.Deps{
		DB:      d.db,
		Images:  d.images,
		Network: network,
		Cgroups: cgroups,
		Runtime: rt,
		Log:     log,
		Metrics: d.metrics,
	})
	if err != nil {
		return nil, err
	}
	if d.metricsReg != nil {
		if err := d.metricsReg.Register(d.srv.StateCollector()); err != nil {
			return nil, fmt.Errorf("register state metrics: %w", err)
		}
		if err := d.metricsReg.Register(keeperRestarts(rt)); err != nil {
			return nil, fmt.Errorf("register keeper metrics: %w", err)
		}
	}
	addr, err := d.srv.StartStreaming(cfg.Streaming.Address)
	if err != nil {
		return nil, err
	}
	log.Info("streaming server listening", "address", addr)
	return d, nil
}

// siblingBinary finds a binary installed next to cubbyd.
func siblingBinary(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s must be installed next to cubbyd: %w", name, err)
	}
	return path, nil
}

// serve serves CRI on the unix socket until ctx ends, and /metrics and
// /healthz on metricsLn when it is not nil.
func (d *daemon) serve(ctx context.Context, metricsLn net.Listener) error {
	ln, err := listenUnix(d.cfg.Listen)
	if err != nil {
		return err
	}
	g := grpc.NewServer(grpc.UnaryInterceptor(server.UnaryInterceptor(d.log, d.metrics)), grpc.StreamInterceptor(server.StreamInterceptor(d.log, d.metrics)), grpc.MaxRecvMsgSize(server.MaxMessageSize), grpc.MaxSendMsgSize(server.MaxMessageSize))
	runtimeapi.RegisterRuntimeServiceServer(g, d.srv)
	runtimeapi.RegisterImageServiceServer(g, d.srv)
	adminPath := filepath.Join(d.cfg.State, "admin.sock")
	adminLn, err := imageimport.Listen(adminPath)
	if err != nil {
		ln.Close()
		return err
	}
	admin := &http.Server{Handler: imageimport.Handler(d.images, d.log), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = admin.Serve(adminLn) }()
	defer admin.Close()
	h, err := newHealth(d.db, d.cfg.Listen)
	if err != nil {
		ln.Close()
		return err
	}
	defer h.close()
	if metricsLn != nil {
		ms := &http.Server{Handler: metricsHandler(d.metricsReg, d.log, h.check), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(metricsLn) }()
		defer ms.Close()
		d.log.Info("metrics and health listening", "address", metricsLn.Addr().String())
	}
	d.log.Info("cubbyd serving CRI", "socket", d.cfg.Listen, "version", buildinfo.Get())
	return serveCRI(ctx, d.log, g, ln, d.sd, h.check)
}

// listenUnix listens on path (mode 0660), replacing a stale socket.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (d *daemon) close() {
	if d.srv != nil {
		d.srv.Close()
	}
	if d.rt != nil {
		d.rt.Close()
	}
	if d.images != nil {
		d.images.Close()
	}
	if d.db != nil {
		d.db.Close()
	}
}
