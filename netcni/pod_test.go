package netcni

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestPortMappings(t *testing.T) {
	tests := []struct {
		name string
		in   []PortMapping
		want []portMapEntry
		ok   bool
	}{
		{name: "none", ok: true},
		{
			name: "normalised",
			in: []PortMapping{
				{HostPort: 8080, ContainerPort: 80},
				{HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: "127.0.0.1"},
				{HostPort: 0, ContainerPort: 9090}, // not forwarded
			},
			want: []portMapEntry{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
				{HostPort: 53, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
			},
			ok: true,
		},
		{name: "sctp", in: []PortMapping{{HostPort: 1, ContainerPort: 2, Protocol: "sctp"}}, want: []portMapEntry{{HostPort: 1, ContainerPort: 2, Protocol: "sctp"}}, ok: true},
		{name: "bad protocol", in: []PortMapping{{HostPort: 1, ContainerPort: 2, Protocol: "icmp"}}},
		{name: "negative host port", in: []PortMapping{{HostPort: -1, ContainerPort: 2}}},
		{name: "host port too big", in: []PortMapping{{HostPort: 70000, ContainerPort: 2}}},
		{name: "no container port", in: []PortMapping{{HostPort: 1}}},
		{name: "bad host ip", in: []PortMapping{{HostPort: 1, ContainerPort: 2, HostIP: "localhost"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodNetwork{PortMappings: tt.in}.portMappings()
			if !tt.ok {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRuntimeConf(t *testing.T) {
	pod := PodNetwork{ID: "abc", Name: "n", Namespace: "ns", UID: "u"}
	rt := pod.runtimeConf("eth0", "/ns", []portMapEntry{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}})
	wantArgs := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", "ns"},
		{"K8S_POD_NAME", "n"},
		{"K8S_POD_INFRA_CONTAINER_ID", "abc"},
		{"K8S_POD_UID", "u"},
	}
	if rt.ContainerID != "abc" || rt.NetNS != "/ns" || rt.IfName != "eth0" || !reflect.DeepEqual(rt.Args, wantArgs) {
		t.Errorf("runtime conf = %+v", rt)
	}
	if _, ok := rt.CapabilityArgs[capPortMappings]; !ok {
		t.Errorf("no portMappings capability arg: %+v", rt.CapabilityArgs)
	}
	if rt := pod.runtimeConf("lo", "", nil); rt.CapabilityArgs != nil {
		t.Errorf("capability args without ports = %+v", rt.CapabilityArgs)
	}
}

func TestPodResult(t *testing.T) {
	idx := func(i int) *int { return &i }
	ipn := func(s string) net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return *n
	}
	ifaces := []*current.Interface{
		{Name: "cni0"},
		{Name: "veth1"},
		{Name: "eth0", Sandbox: "/ns"},
	}
	tests := []struct {
		name string
		ips  []*current.IPConfig
		want []string
	}{
		{
			name: "pod interface only, v4 first",
			ips: []*current.IPConfig{
				{Interface: idx(2), Address: ipn("fd00::5/64")},
				{Interface: idx(0), Address: ipn("10.0.0.1/24")}, // the bridge's
				{Interface: idx(2), Address: ipn("10.0.0.5/24")},
				{Interface: idx(2), Address: ipn("10.0.0.6/24")},
			},
			want: []string{"10.0.0.5", "10.0.0.6", "fd00::5"},
		},
		{name: "no interface index", ips: []*current.IPConfig{{Address: ipn("10.1.0.2/24")}}, want: []string{"10.1.0.2"}},
		{name: "out of range index", ips: []*current.IPConfig{{Interface: idx(7), Address: ipn("10.1.0.2/24")}}},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := podResult(&current.Result{CNIVersion: "1.0.0", Interfaces: ifaces, IPs: tt.ips}, "eth0")
			if tt.want == nil {
				if err == nil {
					t.Fatalf("podResult = %+v, want error", res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ip := range res.IPs {
				got = append(got, ip.String())
			}
			if res.Interface != "eth0" || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("podResult = %s %v, want eth0 %v", res.Interface, got, tt.want)
			}
		})
	}
}

func TestInvalidPod(t *testing.T) {
	m, err := New(Config{ConfDir: t.TempDir(), BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"", "bad id", "../x"} {
		if _, err := m.Setup(ctx, PodNetwork{ID: id, NetNSPath: "/proc/self/ns/net"}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Setup(id %q) err = %v, want ErrInvalidArgument", id, err)
		}
		if err := m.Teardown(ctx, PodNetwork{ID: id}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Teardown(id %q) err = %v, want ErrInvalidArgument", id, err)
		}
	}
	if _, err := m.Setup(ctx, PodNetwork{ID: "ok", NetNSPath: t.TempDir()}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Setup on a directory err = %v, want ErrInvalidArgument", err)
	}
}

func TestIsNetNS(t *testing.T) {
	if !isNetNS("/proc/self/ns/net") {
		t.Error("/proc/self/ns/net is not a netns")
	}
	for _, p := range []string{"", "/proc/self/ns/uts", "/nonexistent", t.TempDir()} {
		if isNetNS(p) {
			t.Errorf("isNetNS(%q) = true", p)
		}
	}
}

func TestWithoutIdlePortmap(t *testing.T) {
	list, err := builtinNetwork(Config{DefaultSubnet: "10.1.0.0/16", DefaultBridge: "b", DefaultNetworkName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	types := func(l *libcni.NetworkConfigList) (out []string) {
		for _, p := range l.Plugins {
			out = append(out, p.Network.Type)
		}
		return out
	}
	pod := PodNetwork{ID: "abc"}
	got := withoutIdlePortmap(list, pod.runtimeConf("eth0", "", nil))
	if !reflect.DeepEqual(types(got), []string{"bridge"}) {
		t.Errorf("without port mappings: plugins %v, want only bridge", types(got))
	}
	if !reflect.DeepEqual(types(list), []string{"bridge", "portmap"}) {
		t.Errorf("the original list was changed: %v", types(list))
	}
	got = withoutIdlePortmap(list, pod.runtimeConf("eth0", "", []portMapEntry{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}}))
	if !reflect.DeepEqual(types(got), []string{"bridge", "portmap"}) {
		t.Errorf("with port mappings: plugins %v, want bridge and portmap", types(got))
	}
}
