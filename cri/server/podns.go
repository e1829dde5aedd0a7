package server

import (
	"fmt"
	"maps"
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

// sysctlName is a sysctl name, cleaned: the names of its segments, the
// directories and file under /proc/sys.
type sysctlName []string

// parseSysctl cleans a sysctl name in dotted form ("net.ipv4.ip_forward",
// where a slash is a dot inside a segment: "net.ipv4.conf.eth0/100.rp_filter")
// or in the slash form kubelet also takes ("net/ipv4/conf/eth0.100/rp_filter").
// A name with an empty segment or ".." anywhere, or a segment "." is refused
// with InvalidArgument: "net/../kernel/core_pattern" must never reach the
// pod init as anything but an error.
func parseSysctl(key string) (sysctlName, error) {
	if key == "" {
		return nil, fmt.Errorf("sysctl name is empty: %w", errInvalidArgument)
	}
	if strings.Contains(key, "..") {
		return nil, fmt.Errorf("sysctl %q is not a valid name: it contains \"..\": %w", key, errInvalidArgument)
	}
	sep, dot := ".", "/" // dotted form: a slash stands for a dot in a segment
	if i := strings.IndexAny(key, "./"); i >= 0 && key[i] == '/' {
		sep, dot = "/", "."
	}
	segments := strings.Split(key, sep)
	for i, seg := range segments {
		name := strings.ReplaceAll(seg, dot, ".")
		if name == "" || name == "." || name == ".." {
			return nil, fmt.Errorf("sysctl %q is not a valid name: segment %d is %q: %w", key, i+1, name, errInvalidArgument)
		}
		segments[i] = name
	}
	return segments, nil
}

// dotted is the name in dotted form, the one the checks and messages use.
func (n sysctlName) dotted() string {
	out := make([]string, len(n))
	for i, seg := range n {
		out[i] = strings.ReplaceAll(seg, ".", "/")
	}
	return strings.Join(out, ".")
}

// path is the name in slash form, its path under /proc/sys: what the pod
// init is given, since it reads any name with a slash in that form.
func (n sysctlName) path() string { return strings.Join(n, "/") }

// podSysctls cleans and checks the pod's sysctls (validateSysctls) and
// returns them by their path under /proc/sys, as the pod init sets them.
func podSysctls(sysctls map[string]string, ns podNamespaces) (map[string]string, error) {
	out := make(map[string]string, len(sysctls))
	first := make(map[string]string, len(sysctls))
	for _, k := range slices.Sorted(maps.Keys(sysctls)) {
		n, err := parseSysctl(k)
		if err != nil {
			return nil, err
		}
		if err := checkSysctlNamespace(k, n.dotted(), ns); err != nil {
			return nil, err
		}
		if prev, ok := first[n.path()]; ok {
			return nil, fmt.Errorf("sysctls %q and %q name the same sysctl %q: %w", prev, k, n.dotted(), errInvalidArgument)
		}
		first[n.path()] = k
		out[n.path()] = sysctls[k]
	}
	return out, nil
}

// validateSysctls checks that every sysctl is a clean name of a namespace
// the pod has of its own, as kubelet's safe and namespaced sysctls do:
// net.* needs the pod's network namespace, the IPC ones its ipc namespace.
// Anything else would change the node.
func validateSysctls(sysctls map[string]string, ns podNamespaces) error {
	_, err := podSysctls(sysctls, ns)
	return err
}

// checkSysctlNamespace checks that sysctl key (dotted d) is in a namespace
// the pod does not share with the node.
func checkSysctlNamespace(k, d string, ns podNamespaces) error {
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
	return nil
}
