package netcni

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/containernetworking/cni/libcni"
)

// Teardown detaches the pod from its networks (CNI DEL) and releases its
// IP. It succeeds when the pod was never set up, was already torn down,
// or its namespace file is gone: then the plugins get an empty netns,
// which they accept, and IPAM still frees the address.
//
// Each attachment libcni cached at ADD is deleted with the configuration
// it was added with; the current configuration is used for the rest.
//
// Known gap: the bridge plugin 1.1.1 learns which ipMasq rules to remove
// from the addresses on the pod's interface, so with the netns gone it
// leaves them. That happens only when the netns vanished without a reboot
// (a reboot clears the rules too).
func (m *Manager) Teardown(ctx context.Context, pod PodNetwork) error {
	if err := m.teardown(ctx, pod); err != nil {
		return fmt.Errorf("cni del for pod %q: %w", pod.ID, err)
	}
	return nil
}

// attachment is one (network, interface) pair to delete.
type attachment struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

func (m *Manager) teardown(ctx context.Context, pod PodNetwork) error {
	if err := validateID(pod.ID); err != nil {
		return err
	}
	defer m.pods.lock(pod.ID)()
	return m.teardownLocked(ctx, pod)
}

// teardownLocked is teardown for a caller that holds the pod's lock.
func (m *Manager) teardownLocked(ctx context.Context, pod PodNetwork) error {
	netns := ""
	if isNetNS(pod.NetNSPath) {
		netns = pod.NetNSPath
	}
	atts, err := m.attachments(pod, netns)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		if err := m.cni.DelNetworkList(ctx, withoutIdlePortmap(a.list, a.rt), a.rt); err != nil {
			errs = append(errs, fmt.Errorf("network %q: %w", a.list.Name, err))
		}
	}
	return errors.Join(errs...)
}

// attachments lists what to delete: every attachment in libcni's cache for
// this pod, with its cached config and arguments, then the current pod
// network if the cache did not have it. A pod networked by an older cubby
// also has a cached loopback attachment (it ran the loopback plugin); that
// one is deleted last, the reverse of its ADD.
func (m *Manager) attachments(pod PodNetwork, netns string) ([]attachment, error) {
	cached, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		// Without the cache the current config still releases the IP
		// in the common case; do not fail the DEL for it.
		cached = nil
	}
	var atts []attachment
	done := map[string]bool{} // ifname
	for _, c := range cached {
		list, err := libcni.NetworkConfFromBytes(c.Config)
		if err != nil || len(list.Plugins) == 0 {
			continue // fall back to the current config below
		}
		args := c.CniArgs
		if args == nil {
			args = pod.args()
		}
		atts = append(atts, attachment{list: list, rt: &libcni.RuntimeConf{
			ContainerID:    pod.ID,
			NetNS:          netns,
			IfName:         c.IfName,
			Args:           args,
			CapabilityArgs: c.CapabilityArgs,
		}})
		done[c.IfName] = true
	}

	if !done[podIfName] {
		network, err := m.network()
		if err != nil {
			return nil, fmt.Errorf("no cached or current config to release the pod's address with: %w", err)
		}
		ports, err := pod.portMappings()
		if err != nil {
			ports = nil // DEL must not fail on what ADD would have refused
		}
		atts = append(atts, attachment{list: network, rt: pod.runtimeConf(podIfName, netns, ports)})
	}
	// Pod network first, an old loopback attachment last.
	var out []attachment
	for _, a := range atts {
		if a.rt.IfName != loopbackIfName {
			out = append(out, a)
		}
	}
	for _, a := range atts {
		if a.rt.IfName == loopbackIfName {
			out = append(out, a)
		}
	}
	return out, nil
}

// withoutIdlePortmap drops the portmap plugin from list when the pod has
// no port mappings: portmap's ADD does nothing then, but its DEL still
// runs iptables several times (under the xtables lock every other pod's
// ADD and DEL wait on) to remove chains that were never made.
func withoutIdlePortmap(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *libcni.NetworkConfigList {
	if _, ok := rt.CapabilityArgs[capPortMappings]; ok {
		return list
	}
	idx := slices.IndexFunc(list.Plugins, func(p *libcni.PluginConfig) bool { return p.Network.Type == "portmap" })
	if idx < 0 {
		return list
	}
	out := *list
	out.Plugins = slices.Delete(slices.Clone(list.Plugins), idx, idx+1)
	return &out
}
