package netcni

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const pluginDir = "/usr/lib/cni"

// testEnv is a Manager on a private bridge, subnet, cache and IPAM dir.
type testEnv struct {
	m        *Manager
	bridge   string
	subnet   *net.IPNet
	ipamDir  string
	netName  string
	cacheDir string
	confDir  string
}

// newTestEnv sets up a Manager on the built-in network, or, with
// noMasq, on a conflist in the conf dir that is the built-in one without
// ipMasq.
func newTestEnv(t *testing.T, noMasq bool, extraPlugins ...any) testEnv {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat(filepath.Join(pluginDir, "bridge")); err != nil {
		t.Skipf("cni plugins not installed in %s", pluginDir)
	}
	suffix := randHex(6)
	e := testEnv{
		bridge:   "cubbyt" + suffix,
		netName:  "cubbytest-" + suffix,
		ipamDir:  t.TempDir(),
		cacheDir: t.TempDir(),
	}
	_, e.subnet, _ = net.ParseCIDR(fmt.Sprintf("10.199.%d.0/24", rand.IntN(256)))
	deleteLinkAtEnd(t, e.bridge)
	e.confDir = t.TempDir()
	if noMasq {
		writeConfList(t, e.confDir, "10-test.conflist", confList{
			CNIVersion: "1.0.0",
			Name:       e.netName,
			Plugins: append([]any{bridgeConf{
				Type: "bridge", Bridge: e.bridge, IsGateway: true,
				IPAM: hostLocalConf{
					Type:    "host-local",
					Ranges:  [][]hostLocalRange{{{Subnet: e.subnet.String()}}},
					DataDir: e.ipamDir,
				},
			}}, extraPlugins...),
		})
	}
	m, err := New(Config{
		ConfDir:            e.confDir,
		BinDirs:            []string{pluginDir},
		CacheDir:           e.cacheDir,
		DefaultBridge:      e.bridge,
		DefaultSubnet:      e.subnet.String(),
		DefaultNetworkName: e.netName,
		IPAMDataDir:        e.ipamDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); err != nil {
		t.Fatalf("Status: %v", err)
	}
	e.m = m
	return e
}

func newTestPod(t *testing.T, e testEnv) PodNetwork {
	t.Helper()
	pod := PodNetwork{
		ID:        "cubbytest" + randHex(16),
		Name:      "web",
		Namespace: "default",
		UID:       randHex(8),
		NetNSPath: newNetNS(t),
	}
	// Runs before the netns and bridge cleanups (t.Cleanup is LIFO), so
	// a failed test still removes iptables rules and the IP.
	t.Cleanup(func() {
		if err := e.m.Teardown(context.Background(), pod); err != nil {
			t.Errorf("cleanup Teardown: %v", err)
		}
	})
	return pod
}

// allocatedIPs lists the addresses host-local holds for the network.
func allocatedIPs(t *testing.T, e testEnv) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.ipamDir, e.netName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ent := range entries {
		if net.ParseIP(ent.Name()) != nil {
			ips = append(ips, ent.Name())
		}
	}
	return ips
}

// podLinks reports eth0's addresses, seen from inside the pod's netns.
func podLinks(t *testing.T, netns string) (eth0 []string) {
	t.Helper()
	err := inNetNS(t, netns, func() error {
		eth, err := net.InterfaceByName("eth0")
		if err != nil {
			return nil // no eth0: empty list
		}
		addrs, err := eth.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				eth0 = append(eth0, ipn.IP.String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("inspect netns: %v", err)
	}
	return eth0
}

func TestSetupTeardown(t *testing.T) {
	e := newTestEnv(t, false)
	removePortmapChainsAtEnd(t)
	pod := newTestPod(t, e)
	pod.PortMappings = []PortMapping{{
		HostPort: int32(20000 + rand.IntN(20000)), ContainerPort: 80, Protocol: "TCP", HostIP: "127.0.0.1",
	}}
	ctx := context.Background()

	res, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if res.Interface != "eth0" || len(res.IPs) != 1 || !e.subnet.Contains(res.IPs[0]) {
		t.Fatalf("Setup = %+v, want one IP on eth0 in %s", res, e.subnet)
	}
	ip := res.IPs[0].String()

	// A retried Setup hands back the same attachment.
	again, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatalf("repeated Setup: %v", err)
	}
	if !slices.EqualFunc(again.IPs, res.IPs, net.IP.Equal) {
		t.Errorf("repeated Setup IPs = %v, want %v", again.IPs, res.IPs)
	}

	if eth0 := podLinks(t, pod.NetNSPath); !slices.Equal(eth0, []string{ip}) {
		t.Errorf("eth0 addresses in pod = %v, want [%s]", eth0, ip)
	}
	if got := allocatedIPs(t, e); !slices.Equal(got, []string{ip}) {
		t.Errorf("host-local allocations = %v, want [%s]", got, ip)
	}
	ports := bridgePorts(t, e.bridge)
	if len(ports) != 1 {
		t.Fatalf("bridge %s ports = %v, want one veth", e.bridge, ports)
	}
	veth := ports[0]
	if rules := natRules(t); !strings.Contains(rules, pod.ID) {
		t.Errorf("no nat rule mentions pod %s after Setup (ipMasq, portmap)", pod.ID)
	}

	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("host-local allocations after Teardown = %v, want none", got)
	}
	if linkExists(veth) {
		t.Errorf("host veth %s still exists after Teardown", veth)
	}
	if eth0 := podLinks(t, pod.NetNSPath); len(eth0) != 0 {
		t.Errorf("eth0 still has %v after Teardown", eth0)
	}
	if rules := natRules(t); strings.Contains(rules, pod.ID) {
		t.Errorf("nat rules still mention pod %s after Teardown:\n%s", pod.ID, rules)
	}

	// Teardown is idempotent.
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}

	// The address is free again: a new Setup gets one.
	res2, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatalf("Setup after Teardown: %v", err)
	}
	if len(res2.IPs) != 1 {
		t.Fatalf("second Setup IPs = %v", res2.IPs)
	}
}

func TestTeardownNeverSetUp(t *testing.T) {
	e := newTestEnv(t, false)
	pod := newTestPod(t, e)
	if err := e.m.Teardown(context.Background(), pod); err != nil {
		t.Fatalf("Teardown of a pod never set up: %v", err)
	}
	pod.NetNSPath = filepath.Join(t.TempDir(), "missing")
	if err := e.m.Teardown(context.Background(), pod); err != nil {
		t.Fatalf("Teardown with a missing netns file: %v", err)
	}
}

func TestTeardownNetNSGone(t *testing.T) {
	// bridge 1.1.1 finds the addresses whose ipMasq rules it removes on
	// the pod's eth0, so with the netns gone it cannot remove them (after
	// a reboot they are gone anyway). Use a network without ipMasq so
	// the test leaves nothing behind.
	e := newTestEnv(t, true)
	if _, src, _ := e.m.NetworkName(); filepath.Base(src) != "10-test.conflist" {
		t.Fatalf("network source = %s, want the test conflist", src)
	}
	pod := newTestPod(t, e)
	ctx := context.Background()
	if _, err := e.m.Setup(ctx, pod); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if got := allocatedIPs(t, e); len(got) != 1 {
		t.Fatalf("host-local allocations = %v, want one", got)
	}
	// The namespace goes away (as after a reboot): the bind mount is
	// gone and the file with it.
	unpinNetNS(t, pod.NetNSPath)
	if err := os.Remove(pod.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown with netns gone: %v", err)
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("host-local allocations after Teardown = %v, want none", got)
	}
}

func TestSetupRejectsNonNetNS(t *testing.T) {
	e := newTestEnv(t, false)
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pod := PodNetwork{ID: "cubbytest" + randHex(8), NetNSPath: plain}
	if _, err := e.m.Setup(context.Background(), pod); err == nil {
		t.Fatal("Setup on a plain file succeeded")
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("host-local allocations = %v, want none", got)
	}
}

func TestSetupFailureUndoes(t *testing.T) {
	// tuning fails ADD on a sysctl that does not exist, after bridge has
	// allocated an address and plugged a veth; its DEL is a no-op.
	e := newTestEnv(t, true, map[string]any{
		"type":   "tuning",
		"sysctl": map[string]string{"net.ipv4.conf.eth0.cubby_no_such_sysctl": "1"},
	})
	pod := newTestPod(t, e)
	if _, err := e.m.Setup(context.Background(), pod); err == nil {
		t.Fatal("Setup succeeded with a failing plugin")
	} else if !strings.Contains(err.Error(), pod.ID) || !strings.Contains(err.Error(), "tuning") {
		t.Errorf("error %q does not name the pod", err)
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("host-local allocations after failed Setup = %v, want none", got)
	}
	if ports := bridgePorts(t, e.bridge); len(ports) != 0 {
		t.Errorf("bridge ports after failed Setup = %v, want none", ports)
	}
}

func TestSetupConcurrent(t *testing.T) {
	e := newTestEnv(t, true)
	const n = 4
	pods := make([]PodNetwork, n)
	for i := range pods {
		pods[i] = newTestPod(t, e)
	}
	ips := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			var res Result
			res, errs[i] = e.m.Setup(context.Background(), pods[i])
			if errs[i] == nil {
				ips[i] = res.IPs[0].String()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Setup pod %d: %v", i, err)
		}
	}
	slices.Sort(ips)
	if got := allocatedIPs(t, e); !slices.Equal(got, slices.Compact(slices.Clone(ips))) || len(got) != n {
		t.Errorf("allocations = %v, Setup IPs = %v; want %d distinct and equal", got, ips, n)
	}
	for i := range pods {
		wg.Go(func() { errs[i] = e.m.Teardown(context.Background(), pods[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Teardown pod %d: %v", i, err)
		}
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("allocations after Teardown = %v", got)
	}
}

func TestTeardownUsesCachedConfig(t *testing.T) {
	e := newTestEnv(t, true)
	pod := newTestPod(t, e)
	ctx := context.Background()
	if _, err := e.m.Setup(ctx, pod); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	// The operator drops in a config that sorts first: a different
	// network. DEL must still release the address in the old one.
	other := "cubbyother-" + randHex(4)
	otherBridge := "cubbyo" + randHex(6)
	deleteLinkAtEnd(t, otherBridge)
	writeConfList(t, e.confDir, "00-other.conflist", confList{
		CNIVersion: "1.0.0",
		Name:       other,
		Plugins: []any{bridgeConf{Type: "bridge", Bridge: otherBridge, IPAM: hostLocalConf{
			Type: "host-local", Ranges: [][]hostLocalRange{{{Subnet: "10.198.0.0/24"}}}, DataDir: e.ipamDir,
		}}},
	})
	if name, _, _ := e.m.NetworkName(); name != other {
		t.Fatalf("network after drop-in = %q, want %q", name, other)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if got := allocatedIPs(t, e); len(got) != 0 {
		t.Errorf("allocations in %s after Teardown = %v, want none", e.netName, got)
	}
}

// TestTeardownOldLoopbackAttachment: a pod networked by an older cubby,
// which ran the loopback plugin, has a cached loopback attachment; its
// teardown deletes it too, so that no cache entry of the pod is left.
func TestTeardownOldLoopbackAttachment(t *testing.T) {
	e := newTestEnv(t, true)
	pod := newTestPod(t, e)
	ctx := context.Background()
	if _, err := e.m.Setup(ctx, pod); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	old, err := marshalList(confList{CNIVersion: builtinCNIVersion, Name: loopbackNetworkName, Plugins: []any{map[string]string{"type": "loopback"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.cni.AddNetworkList(ctx, old, pod.runtimeConf(loopbackIfName, pod.NetNSPath, nil)); err != nil {
		t.Fatalf("loopback ADD as an older cubby ran it: %v", err)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	left, err := e.m.cni.GetCachedAttachments(pod.ID)
	if err != nil || len(left) != 0 {
		t.Errorf("cached attachments after Teardown: %d (%v), want none", len(left), err)
	}
}

// Check runs without port mappings: portmap 1.1.1's CHECK looks for an
// IPv6 DNAT chain even for IPv4-only mappings and fails.
func TestCheck(t *testing.T) {
	e := newTestEnv(t, false)
	pod := newTestPod(t, e)
	ctx := context.Background()
	if _, err := e.m.Setup(ctx, pod); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if err := e.m.Check(ctx, pod); err != nil {
		t.Errorf("Check after Setup: %v", err)
	}
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if err := e.m.Check(ctx, pod); err == nil {
		t.Error("Check after Teardown succeeded")
	}
}
