package main

import (
	"bytes"
	"fmt"

	"github.com/BurntSushi/toml"

	"cubby/cmd/internal/buildinfo"
)

// statusInfo is cubbyd's share of a verbose CRI Status (crictl info): the
// configuration in effect, keyed as in the TOML file, and the build.
func (d *daemon) statusInfo() map[string]any {
	d.mu.Lock()
	live := d.live
	d.mu.Unlock()
	info := map[string]any{"version": versionInfo(buildinfo.Get())}
	cfg, err := configTree(live)
	if err != nil {
		cfg = map[string]any{"error": err.Error()}
	}
	info["config"] = cfg
	return info
}

func versionInfo(b buildinfo.Info) map[string]string {
	return map[string]string{"version": b.Version, "commit": b.Commit, "go": b.GoVersion}
}

// configTree is c as the generic tree its TOML encoding decodes to, so
// that its JSON has the TOML file's keys ("no_progress_timeout": "5m0s").
func configTree(c config) (map[string]any, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	var tree map[string]any
	if _, err := toml.Decode(buf.String(), &tree); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return tree, nil
}
