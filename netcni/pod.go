package netcni

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
)

const (
	// podIfName is the pod's interface on the pod network.
	podIfName = "eth0"
	// loopbackIfName is the interface of the loopback attachments that
	// older cubby versions made with the loopback plugin.
	loopbackIfName = "lo"
	// capPortMappings is the CNI capability arg for host port mappings.
	capPortMappings = "portMappings"
	// capBandwidth is the capability arg for traffic shaping (the
	// bandwidth plugin), capDNS the one for the pod's DNS settings.
	capBandwidth = "bandwidth"
	capDNS       = "dns"
)

// PodNetwork identifies one pod sandbox to the plugins.
type PodNetwork struct {
	// ID is the pod sandbox id, the CNI container id.
	ID string
	// Name, Namespace and UID are the pod's metadata.
	Name      string
	Namespace string
	UID       string
	// NetNSPath is a file with the pod's network namespace bind-mounted
	// onto it.
	NetNSPath string
	// PortMappings are forwarded from the host by the portmap plugin.
	// Entries with HostPort 0 are not forwarded.
	PortMappings []PortMapping
	// Bandwidth, when set, is passed to plugins that shape traffic.
	Bandwidth *Bandwidth
	// DNS, when set, is passed to plugins that ask for the pod's DNS.
	DNS *DNS
}

// Bandwidth limits a pod's traffic: rates in bits per second, bursts in
// bits; zero means no limit in that direction.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// DNS is the pod's resolver configuration.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// PortMapping forwards HostIP:HostPort on the host to ContainerPort in the pod.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is tcp, udp or sctp (any case); empty means tcp.
	Protocol string
	// HostIP restricts the mapping to one host address; empty means all.
	HostIP string
}

// portMapEntry is the portMappings capability arg as plugins read it.
type portMapEntry struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// validateID checks what every call needs: an id libcni accepts.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty pod id", ErrInvalidArgument)
	}
	if err := utils.ValidateContainerID(id); err != nil {
		return fmt.Errorf("%w: pod id %q: %s", ErrInvalidArgument, id, err.Msg)
	}
	return nil
}

// portMappings validates pod.PortMappings and returns them in capability
// arg form, skipping entries without a host port.
func (pod PodNetwork) portMappings() ([]portMapEntry, error) {
	var out []portMapEntry
	for i, pm := range pod.PortMappings {
		if pm.HostPort == 0 {
			continue
		}
		proto := strings.ToLower(pm.Protocol)
		switch proto {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("%w: port mapping %d: protocol %q is not tcp, udp or sctp", ErrInvalidArgument, i, pm.Protocol)
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 {
			return nil, fmt.Errorf("%w: port mapping %d: host port %d out of range", ErrInvalidArgument, i, pm.HostPort)
		}
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return nil, fmt.Errorf("%w: port mapping %d: container port %d out of range", ErrInvalidArgument, i, pm.ContainerPort)
		}
		if pm.HostIP != "" && net.ParseIP(pm.HostIP) == nil {
			return nil, fmt.Errorf("%w: port mapping %d: host ip %q is not an ip address", ErrInvalidArgument, i, pm.HostIP)
		}
		out = append(out, portMapEntry{
			HostPort:      pm.HostPort,
			ContainerPort: pm.ContainerPort,
			Protocol:      proto,
			HostIP:        pm.HostIP,
		})
	}
	return out, nil
}

// args are the CNI_ARGS kubelet-style runtimes pass; IgnoreUnknown lets
// plugins that do not know the K8S_ keys accept them.
func (pod PodNetwork) args() [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", pod.Namespace},
		{"K8S_POD_NAME", pod.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
		{"K8S_POD_UID", pod.UID},
	}
}

// runtimeConf builds one plugin invocation's arguments. netns may be
// empty (DEL of a pod whose namespace is gone). libcni hands each
// capability arg only to the plugins whose config declares it.
func (pod PodNetwork) runtimeConf(ifName, netns string, ports []portMapEntry) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       netns,
		IfName:      ifName,
		Args:        pod.args(),
	}
	caps := map[string]any{}
	if len(ports) > 0 {
		caps[capPortMappings] = ports
	}
	if pod.Bandwidth != nil && *pod.Bandwidth != (Bandwidth{}) {
		caps[capBandwidth] = *pod.Bandwidth
	}
	if d := pod.DNS; d != nil && len(d.Servers)+len(d.Searches)+len(d.Options) > 0 {
		caps[capDNS] = *d
	}
	if len(caps) > 0 {
		rt.CapabilityArgs = caps
	}
	return rt
}
