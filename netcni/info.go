package netcni

// Info describes the network configuration in use, for an operator
// (crictl info): where configs and plugins are looked for, the network
// loaded and why files were passed over.
type Info struct {
	ConfDir  string        `json:"confDir"`
	BinDirs  []string      `json:"binDirs"`
	Networks []NetworkInfo `json:"networks"`
	// LastError says why pods cannot be networked ("" when they can).
	LastError string `json:"lastError"`
	// Ignored says which conf dir files are not in use and why.
	Ignored string `json:"ignored,omitempty"`
}

// NetworkInfo is one network loaded.
type NetworkInfo struct {
	Name string `json:"name"`
	// Source is the file it came from, or "built-in".
	Source     string   `json:"source"`
	CNIVersion string   `json:"cniVersion"`
	Plugins    []string `json:"plugins"`
}

// Info reports the network configuration, re-reading the conf dir first if
// its contents changed (as Status does).
func (m *Manager) Info() Info {
	info := Info{ConfDir: m.cfg.ConfDir, BinDirs: m.cfg.BinDirs, Networks: []NetworkInfo{}}
	net, err := m.network()
	if err == nil {
		err = m.checkPlugins(net)
	}
	if err != nil {
		info.LastError = err.Error()
	}
	if net == nil {
		return info
	}
	m.mu.Lock()
	source, ignored := m.conf.source, m.conf.ignored
	m.mu.Unlock()
	n := NetworkInfo{Name: net.Name, Source: source, CNIVersion: net.CNIVersion, Plugins: []string{}}
	for _, p := range net.Plugins {
		n.Plugins = append(n.Plugins, p.Network.Type)
	}
	info.Networks = append(info.Networks, n)
	if ignored != nil {
		info.Ignored = ignored.Error()
	}
	return info
}
