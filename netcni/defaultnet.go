package netcni

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/libcni"
)

const (
	// builtinCNIVersion is the newest spec the Debian 1.1.1 plugins speak.
	builtinCNIVersion = "1.0.0"
	// loopbackNetworkName named the loopback network of older cubby
	// versions; pods they networked still have cache entries under it, so
	// no configured network may take the name.
	loopbackNetworkName = "cni-loopback"
)

// The JSON shapes of the built-in network. Only the keys we set are
// declared; the plugins define the rest.
type (
	confList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	bridgeConf struct {
		Type        string        `json:"type"`
		Bridge      string        `json:"bridge"`
		IsGateway   bool          `json:"isGateway"`
		IPMasq      bool          `json:"ipMasq"`
		HairpinMode bool          `json:"hairpinMode"`
		IPAM        hostLocalConf `json:"ipam"`
	}
	hostLocalConf struct {
		Type    string             `json:"type"`
		Ranges  [][]hostLocalRange `json:"ranges"`
		Routes  []route            `json:"routes"`
		DataDir string             `json:"dataDir,omitempty"`
	}
	hostLocalRange struct {
		Subnet string `json:"subnet"`
	}
	route struct {
		Dst string `json:"dst"`
	}
	portmapConf struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		SNAT         bool            `json:"snat"`
	}
)

// builtinNetwork returns the network used when the conf dir has none:
// bridge (with host-local IPAM) followed by portmap.
func builtinNetwork(cfg Config) (*libcni.NetworkConfigList, error) {
	_, subnet, err := net.ParseCIDR(cfg.DefaultSubnet)
	if err != nil {
		return nil, fmt.Errorf("default subnet %q: %w", cfg.DefaultSubnet, err)
	}
	defaultRoute := "0.0.0.0/0"
	if subnet.IP.To4() == nil {
		defaultRoute = "::/0"
	}
	list := confList{
		CNIVersion: builtinCNIVersion,
		Name:       cfg.DefaultNetworkName,
		Plugins: []any{
			bridgeConf{
				Type:        "bridge",
				Bridge:      cfg.DefaultBridge,
				IsGateway:   true,
				IPMasq:      true,
				HairpinMode: true,
				IPAM: hostLocalConf{
					Type:    "host-local",
					Ranges:  [][]hostLocalRange{{{Subnet: subnet.String()}}},
					Routes:  []route{{Dst: defaultRoute}},
					DataDir: cfg.IPAMDataDir,
				},
			},
			portmapConf{
				Type:         "portmap",
				Capabilities: map[string]bool{capPortMappings: true},
				SNAT:         true,
			},
		},
	}
	return marshalList(list)
}

func marshalList(list confList) (*libcni.NetworkConfigList, error) {
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("encode network %q: %w", list.Name, err)
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("parse network %q: %w", list.Name, err)
	}
	return l, nil
}
