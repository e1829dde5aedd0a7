package netcni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// setupCleanupTimeout bounds the DEL that undoes a failed Setup. It runs on
// a context the caller's cancellation cannot abort, so a kubelet deadline
// does not leave an IP allocated.
const setupCleanupTimeout = time.Minute

// Result is what Setup gives the pod.
type Result struct {
	// Interface is the pod's interface on the pod network ("eth0").
	Interface string
	// IPs are the pod's addresses on it, the first IPv4 one first.
	IPs []net.IP
}

// Setup attaches the pod to the pod network (CNI ADD, interface eth0); the
// pod init has brought up lo itself. On failure it undoes what it did before
// returning, so the caller need not call Teardown (doing so is harmless).
//
// Setup of a pod that is already set up in the same netns on the same
// network returns the cached result without running the plugins again, so
// a retried call cannot break (or, by undoing a failed second ADD, tear
// down) a working attachment.
func (m *Manager) Setup(ctx context.Context, pod PodNetwork) (Result, error) {
	res, err := m.setup(ctx, pod)
	if err != nil {
		return Result{}, fmt.Errorf("cni add for pod %q: %w", pod.ID, err)
	}
	return res, nil
}

func (m *Manager) setup(ctx context.Context, pod PodNetwork) (Result, error) {
	if err := validateID(pod.ID); err != nil {
		return Result{}, err
	}
	defer m.pods.lock(pod.ID)()
	ports, err := pod.portMappings()
	if err != nil {
		return Result{}, err
	}
	if !isNetNS(pod.NetNSPath) {
		return Result{}, fmt.Errorf("%w: %q is not a network namespace", ErrInvalidArgument, pod.NetNSPath)
	}
	network, err := m.network()
	if err != nil {
		return Result{}, err
	}

	rt := pod.runtimeConf(podIfName, pod.NetNSPath, ports)
	if res, ok := m.cachedResult(network.Name, pod, rt); ok {
		return res, nil
	}

	// portmap without port mappings passes the result through: not
	// running it saves a plugin exec here and its iptables work on DEL.
	r, err := m.cni.AddNetworkList(ctx, withoutIdlePortmap(network, rt), rt)
	if err != nil {
		return Result{}, m.undo(ctx, pod, fmt.Errorf("network %q: %w", network.Name, err))
	}
	res, err := podResult(r, podIfName)
	if err != nil {
		return Result{}, m.undo(ctx, pod, fmt.Errorf("network %q: %w", network.Name, err))
	}
	return res, nil
}

// cachedResult returns the result of an earlier, complete ADD of the pod
// to the named network in the same netns. libcni writes the cache only
// after every plugin of the list succeeded.
func (m *Manager) cachedResult(network string, pod PodNetwork, rt *libcni.RuntimeConf) (Result, bool) {
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return Result{}, false
	}
	for _, a := range atts {
		if a.Network != network || a.IfName != rt.IfName || a.NetNS != pod.NetNSPath {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return Result{}, false
		}
		r, err := m.cni.GetNetworkListCachedResult(list, rt)
		if err != nil || r == nil {
			return Result{}, false
		}
		res, err := podResult(r, rt.IfName)
		return res, err == nil
	}
	return Result{}, false
}

// undo runs DEL after a failed ADD and returns cause, joined with the
// cleanup error if there was one.
func (m *Manager) undo(ctx context.Context, pod PodNetwork, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupCleanupTimeout)
	defer cancel()
	if err := m.teardownLocked(ctx, pod); err != nil {
		return errors.Join(cause, fmt.Errorf("undo: %w", err))
	}
	return cause
}

// podResult picks the pod-side interface and its addresses out of a
// plugin chain's result. Addresses on host-side interfaces (a bridge, the
// host end of a veth) are not the pod's.
func podResult(r types.Result, ifName string) (Result, error) {
	cur, err := current.NewResultFromResult(r)
	if err != nil {
		return Result{}, fmt.Errorf("convert result: %w", err)
	}
	res := Result{Interface: ifName}
	inPod := func(idx *int) bool {
		if idx == nil {
			return true // the plugin did not say; assume the pod's
		}
		if *idx < 0 || *idx >= len(cur.Interfaces) {
			return false
		}
		return cur.Interfaces[*idx].Sandbox != ""
	}
	for _, ipc := range cur.IPs {
		if ipc == nil || ipc.Address.IP == nil || !inPod(ipc.Interface) {
			continue
		}
		res.IPs = append(res.IPs, ipc.Address.IP)
	}
	if len(res.IPs) == 0 {
		return Result{}, errors.New("plugins returned no address for the pod")
	}
	// IPv4 first, otherwise in the plugins' order.
	slices.SortStableFunc(res.IPs, func(a, b net.IP) int {
		return v4rank(a) - v4rank(b)
	})
	return res, nil
}

func v4rank(ip net.IP) int {
	if ip.To4() != nil {
		return 0
	}
	return 1
}
