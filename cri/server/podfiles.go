package server

import (
	"fmt"
	"os"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Files every container of a pod bind-mounts from the pod directory.
const (
	hostnameFile   = "hostname"
	hostsFile      = "hosts"
	resolvConfFile = "resolv.conf"
)

// hostResolvConf is copied into pods without a DNS config, as kubelet's
// "Default" DNS policy expects.
const hostResolvConf = "/etc/resolv.conf"

// hostHosts is copied into host-network pods.
const hostHosts = "/etc/hosts"

// readHostFile reads one of the node's files; a missing one is empty.
func readHostFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read node's %s: %w", path, err)
	}
	return string(b), nil
}

// writePodFiles writes the pod's hostname, hosts and resolv.conf.
func (s *Server) writePodFiles(p *pod) error {
	hostname := podHostname(p.config)
	resolv, err := resolvConf(p.config.GetDnsConfig())
	if err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if namespacesOf(p.config).hostNetwork {
		// The node's network: the node's name and the node's hosts file.
		if hostname, err = nodeHostname(); err != nil {
			return err
		}
		if hosts, err = readHostFile(hostHosts); err != nil {
			return err
		}
	}
	files := map[string]string{
		hostnameFile:   hostname + "\n",
		hostsFile:      hosts,
		resolvConfFile: resolv,
	}
	for name, content := range files {
		if err := s.rt.WritePodFile(p.id, name, []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// resolvConf renders the pod's resolv.conf from its DNS config, or the
// host's when the config has none.
func resolvConf(dns *runtimeapi.DNSConfig) (string, error) {
	if len(dns.GetServers()) == 0 && len(dns.GetSearches()) == 0 && len(dns.GetOptions()) == 0 {
		return readHostFile(hostResolvConf)
	}
	var b strings.Builder
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	for _, s := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.String(), nil
}
