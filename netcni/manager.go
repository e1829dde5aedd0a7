package netcni

import (
	"fmt"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

// Manager networks pod sandboxes. It is safe for concurrent use; calls for
// different pods run in parallel, calls for the same pod one at a time.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	pods podLocks

	// mu guards conf. It is held while the conf dir is stat'ed and, when
	// it changed, re-read (a few small files), never across a plugin run.
	mu   sync.Mutex
	conf loaded
}

// New returns a Manager for cfg and loads the network configuration. A
// conf dir without a usable config is not an error here: Status reports
// it, and the conf dir is read again when it changes.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	m := &Manager{cfg: cfg, cni: cfg.newCNI()}
	m.network() // first load
	return m, nil
}

// network returns the current pod network, re-reading the conf dir if
// its contents changed since the last call.
func (m *Manager) network() (*libcni.NetworkConfigList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stamp, err := confStamp(m.cfg.ConfDir)
	if err != nil {
		// Keep the last good config; a transient readdir error should
		// not take pod networking down.
		if m.conf.net != nil {
			return m.conf.net, nil
		}
		return nil, fmt.Errorf("%w: read cni conf dir %s: %v", ErrNotReady, m.cfg.ConfDir, err)
	}
	if m.conf.stamp != stamp || (m.conf.net == nil && m.conf.err == nil) {
		next := load(m.cfg, stamp)
		if next.err != nil && m.conf.net != nil {
			// A config being rewritten, or a broken one dropped in,
			// must not take pod networking down: keep the last good
			// network and say why.
			next.net, next.source = m.conf.net, m.conf.source
			next.ignored = fmt.Errorf("keeping network %q from %s: %w", m.conf.net.Name, m.conf.source, next.err)
			next.err = nil
		}
		m.conf = next
	}
	return m.conf.net, m.conf.err
}

// Ignored says which conf dir files are not in use and why (nil when
// every candidate file is fine): broken files skipped for a later one, or
// a conf dir with no usable file while the last good network stays.
func (m *Manager) Ignored() error {
	if _, err := m.network(); err != nil {
		return nil // Status reports it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conf.ignored
}

// NetworkName returns the name of the pod network in use and the file it
// came from ("built-in" for the default), or the reason there is none.
func (m *Manager) NetworkName() (name, source string, err error) {
	net, err := m.network()
	if err != nil {
		return "", "", err
	}
	m.mu.Lock()
	source = m.conf.source
	m.mu.Unlock()
	return net.Name, source, nil
}

// Status reports whether pods can be networked: nil when a network
// config is loaded and every plugin it needs is in BinDirs. Otherwise the error, wrapping ErrNotReady, says why in
// words meant for an operator.
func (m *Manager) Status() error {
	net, err := m.network()
	if err != nil {
		return err
	}
	return m.checkPlugins(net)
}

// checkPlugins checks that every plugin of list, and every IPAM plugin
// they delegate to, is an executable in BinDirs.
func (m *Manager) checkPlugins(list *libcni.NetworkConfigList) error {
	for _, p := range list.Plugins {
		types := []string{p.Network.Type}
		if p.Network.IPAM.Type != "" {
			types = append(types, p.Network.IPAM.Type)
		}
		for _, t := range types {
			if _, err := invoke.FindInPath(t, m.cfg.BinDirs); err != nil {
				return fmt.Errorf("%w: cni plugin %q of network %q not found in %v", ErrNotReady, t, list.Name, m.cfg.BinDirs)
			}
		}
	}
	return nil
}
