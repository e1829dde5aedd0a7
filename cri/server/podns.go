package server

import (
	"fmt"
	"os"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podNamespaces are a pod's namespace modes: which of its namespaces are
// the node's.
type podNamespaces struct {
	hostNetwork, hostIPC, hostPID bool
}

// namespacesOf reads the pod-level namespace options. kubelet sends POD or
// NODE for network and ipc, and POD, CONTAINER or NODE for pid.
func namespacesOf(cfg *runtimeapi.PodSandboxConfig) podNamespaces {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return podNamespaces{
		hostNetwork: ns.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		hostIPC:     ns.GetIpc() == runtimeapi.NamespaceMode_NODE,
		hostPID:     ns.GetPid() == runtimeapi.NamespaceMode_NODE,
	}
}

// validatePodNamespaces rejects modes a pod cannot have: TARGET names a
// container, so only containers use it; network and ipc are per pod.
func validatePodNamespaces(ns *runtimeapi.NamespaceOption) error {
	for _, m := range []struct {
		kind string
		mode runtimeapi.NamespaceMode
	}{{"network", ns.GetNetwork()}, {"ipc", ns.GetIpc()}, {"pid", ns.GetPid()}} {
		switch m.mode {
		case runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE:
		case runtimeapi.NamespaceMode_CONTAINER:
			if m.kind != "pid" {
				return fmt.Errorf("pod %s namespace mode CONTAINER: a pod's containers share its %s namespace: %w", m.kind, m.kind, errInvalidArgument)
			}
		default:
			return fmt.Errorf("pod %s namespace mode %s is not valid for a pod sandbox: %w", m.kind, m.mode, errInvalidArgument)
		}
	}
	return nil
}

// nodeHostname is the node's hostname, which pods in the node's network
// (and UTS) namespace have.
func nodeHostname() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("read node hostname: %w", err)
	}
	return h, nil
}

// containerHostname is the hostname the pod's containers see: the node's
// for a host-network pod (it shares the node's UTS namespace), the pod's
// otherwise.
func containerHostname(cfg *runtimeapi.PodSandboxConfig) string {
	if namespacesOf(cfg).hostNetwork {
		if h, err := nodeHostname(); err == nil {
			return h
		}
	}
	return podHostname(cfg)
}

// ipcSysctlPrefixes name the sysctls of the IPC namespace, as kubelet's
// list of namespaced sysctls does.
var ipcSysctlPrefixes = []string{"kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}

func isIPCSysctl(dotted string) bool {
	return slices.ContainsFunc(ipcSysctlPrefixes, func(p string) bool { return strings.HasPrefix(dotted, p) })
}

// dottedSysctl is a sysctl name in dotted form: kubelet also accepts the
// slash form ("net/ipv4/conf/eth0.100/rp_filter"), where a dot is part of
// a name and becomes a slash in the dotted form.
func dottedSysctl(key string) string {
	if i := strings.IndexAny(key, "./"); i < 0 || key[i] == '.' {
		return key
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, key)
}

// validateSysctls checks that every sysctl belongs to a namespace the pod
// has of its own, as kubelet's safe and namespaced sysctls do: net.* needs
// the pod's network namespace, the IPC ones its ipc namespace. Anything
// else would change the node.
func validateSysctls(sysctls map[string]string, ns podNamespaces) error {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		d := dottedSysctl(k)
		if d == "" || strings.Contains(d, "..") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("sysctl %q is not a valid name: %w", k, errInvalidArgument)
		}
		switch {
		case strings.HasPrefix(d, "net."):
			if ns.hostNetwork {
				return fmt.Errorf("sysctl %q cannot be set in a pod that uses the host network namespace: %w", k, errInvalidArgument)
			}
		case isIPCSysctl(d):
			if ns.hostIPC {
				return fmt.Errorf("sysctl %q cannot be set in a pod that uses the host IPC namespace: %w", k, errInvalidArgument)
			}
		default:
			return fmt.Errorf("sysctl %q is not namespaced: it would change the node: %w", k, errInvalidArgument)
		}
	}
	return nil
}
