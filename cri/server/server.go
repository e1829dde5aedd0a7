package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"cubby/cgroupmgr"
	"cubby/cri/store"
	"cubby/netcni"
	"cubby/rootfs"
	"cubby/sandbox"
)

// Config is the CRI layer's share of cubbyd's configuration.
type Config struct {
	// DefaultCgroupParent is the cgroup under which pods without a
	// cgroup_parent get their own cgroup, e.g. "/cubby".
	DefaultCgroupParent string
	// Version is cubby's version, reported by Version.
	Version string
	// Fault, when set, is called at every named fault point (fault.go);
	// crash-consistency tests make it kill cubbyd. nil in production.
	Fault func(point string)
	// MaxConcurrentExecs bounds the execs running at once in one
	// container (DefaultMaxConcurrentExecs when 0).
	MaxConcurrentExecs int
	// PidsLimit, when > 0, is the pids limit of every container.
	PidsLimit int64
	// UnsetSeccompProfile is the seccomp profile, in seccomp_profile_path
	// form, of containers that ask for none ("": unconfined).
	UnsetSeccompProfile string
	// StatusInfo, when set, adds entries to the info of a verbose Status
	// (crictl info), each value marshalled to JSON; it is called for each
	// such request and must be cheap.
	StatusInfo func() map[string]any
}

// MaxMessageSize is the largest gRPC message cubbyd sends or receives,
// kubelet's limit too (its CRI client takes at most 16 MiB).
const MaxMessageSize = 16 << 20

// DefaultMaxConcurrentExecs is the default bound on the execs running at
// once in one container: far above what kubelet's probes and a few
// interactive sessions need, far below what would exhaust the node.
const DefaultMaxConcurrentExecs = 32

// Deps are the layers below the CRI layer.
type Deps struct {
	DB      *store.DB
	Images  *rootfs.Store
	Network *netcni.Manager
	Cgroups *cgroupmgr.Manager
	Runtime *sandbox.Runtime
	Log     *slog.Logger
	// Metrics records pod step durations and pod init exits; nil: none.
	// (The CRI call metrics are the interceptors'.)
	Metrics *Metrics
}

// Server serves the CRI runtime and image services.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg     Config
	db      *store.DB
	images  *rootfs.Store
	net     *netcni.Manager
	cgroups *cgroupmgr.Manager
	rt      *sandbox.Runtime
	log     *slog.Logger
	metrics *Metrics // nil: none
	objs    *objects
	events  events
	// stream is the exec/attach/port-forward server, once started.
	stream streaming.Server
	// release hands memory back to the OS after large exec outputs.
	release *memReleaser
	// security is the "security" entry of a verbose Status.
	security securityInfo

	// ctx ends when the server shuts down; it stops background monitors.
	ctx      context.Context
	cancel   context.CancelFunc
	monitors sync.WaitGroup
}

// New returns a server over deps and restores the pods and containers
// recorded by an earlier run.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.MaxConcurrentExecs <= 0 {
		cfg.MaxConcurrentExecs = DefaultMaxConcurrentExecs
	}
	if err := ValidateSeccompProfilePath(cfg.UnsetSeccompProfile); err != nil {
		return nil, fmt.Errorf("unset seccomp profile: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		db:       deps.DB,
		images:   deps.Images,
		net:      deps.Network,
		cgroups:  deps.Cgroups,
		rt:       deps.Runtime,
		log:      deps.Log,
		metrics:  deps.Metrics,
		objs:     newObjects(),
		release:  newMemReleaser(),
		security: newSecurityInfo(cfg.UnsetSeccompProfile),
		ctx:      ctx,
		cancel:   cancel,
	}
	if err := s.recover(); err != nil {
		cancel()
		return nil, fmt.Errorf("restore state: %w", err)
	}
	return s, nil
}

// Close stops the server's background work. Pods and containers keep running.
func (s *Server) Close() {
	s.cancel()
	s.monitors.Wait()
}

// newID returns a random 64-hex-digit id, like containerd's.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}
