package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"cubby/rootfs"
)

// reloadable is a setting that SIGHUP applies to the running daemon: its
// key and everything under it, and how to take it from a new configuration.
type reloadable struct {
	key  toml.Key
	take func(dst *config, src config)
}

// reloadables are the settings a reload applies; every other key needs a
// restart. (The CNI conf dir's contents are watched and reloaded on their
// own; the conf_dir key itself is fixed.)
var reloadables = []reloadable{
	{toml.Key{"log_level"}, func(d *config, s config) { d.LogLevel = s.LogLevel }},
	{toml.Key{"log_format"}, func(d *config, s config) { d.LogFormat = s.LogFormat }},
	{toml.Key{"image", "insecure_registries"}, func(d *config, s config) { d.Image.InsecureRegistries = s.Image.InsecureRegistries }},
	{toml.Key{"image", "registries"}, func(d *config, s config) { d.Image.Registries = s.Image.Registries }},
}

// reloadPlan is what a reload does with a new configuration.
type reloadPlan struct {
	// cfg is the running configuration with the reloadable settings of
	// the new one.
	cfg config
	// changed are the reloadable keys whose values change.
	changed []string
	// refused are the keys that differ from the running values and need a
	// restart; they keep their running values.
	refused []string
}

// planReload compares the running configuration with next key by key.
func planReload(running, next config) (reloadPlan, error) {
	plan := reloadPlan{cfg: running}
	for _, r := range reloadables {
		r.take(&plan.cfg, next)
	}
	diff, err := diffKeys(running, next)
	if err != nil {
		return reloadPlan{}, err
	}
	for _, k := range diff {
		if r := reloadableOf(k); r != nil {
			if s := r.key.String(); !slices.Contains(plan.changed, s) {
				plan.changed = append(plan.changed, s)
			}
			continue
		}
		plan.refused = append(plan.refused, k.String())
	}
	return plan, nil
}

// reloadableOf returns the reloadable setting that key is or is under.
func reloadableOf(key toml.Key) *reloadable {
	for i, r := range reloadables {
		if len(key) >= len(r.key) && slices.Equal(key[:len(r.key)], r.key) {
			return &reloadables[i]
		}
	}
	return nil
}

// diffKeys lists the leaf keys whose values differ between a and b, or
// that only one of them sets, sorted.
func diffKeys(a, b config) ([]toml.Key, error) {
	fa, err := flatten(a)
	if err != nil {
		return nil, err
	}
	fb, err := flatten(b)
	if err != nil {
		return nil, err
	}
	var diff []toml.Key
	for s, ka := range fa {
		if kb, ok := fb[s]; !ok || !reflect.DeepEqual(ka.value, kb.value) {
			diff = append(diff, ka.key)
		}
	}
	for s, kb := range fb {
		if _, ok := fa[s]; !ok {
			diff = append(diff, kb.key)
		}
	}
	sort.Slice(diff, func(i, j int) bool { return diff[i].String() < diff[j].String() })
	return diff, nil
}

type leaf struct {
	key   toml.Key
	value any
}

// flatten maps each leaf key of c, as TOML spells it, to its value.
func flatten(c config) (map[string]leaf, error) {
	tree, err := configTree(c)
	if err != nil {
		return nil, err
	}
	out := map[string]leaf{}
	var walk func(prefix toml.Key, m map[string]any)
	walk = func(prefix toml.Key, m map[string]any) {
		for k, v := range m {
			key := append(slices.Clone(prefix), k)
			if sub, ok := v.(map[string]any); ok {
				walk(key, sub)
				continue
			}
			out[key.String()] = leaf{key, v}
		}
	}
	walk(nil, tree)
	return out, nil
}

// reloadOn reloads the configuration with load on each signal from hup
// until ctx ends.
func (d *daemon) reloadOn(ctx context.Context, hup <-chan os.Signal, load func() (*configSet, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			d.reload(load)
		}
	}
}

// reload re-reads the configuration with load and applies what can change
// at runtime. A configuration with errors changes nothing; keys that need a
// restart are logged and keep their running values.
func (d *daemon) reload(load func() (*configSet, error)) {
	d.log.Info("SIGHUP: reloading configuration")
	cs, err := load()
	if err != nil {
		d.logConfigErrors(err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	plan, err := planReload(d.live, cs.cfg)
	if err != nil {
		d.log.Error("configuration reload refused", "error", err)
		return
	}
	if err := d.apply(plan.cfg); err != nil {
		d.log.Error("configuration reload refused", "error", err)
		return
	}
	for _, k := range plan.refused {
		file, line := cs.where(k)
		if line > 0 {
			file = fmt.Sprintf("%s:%d", file, line)
		}
		d.log.Warn("configuration change needs a restart; running value kept", "key", k, "set_in", file)
	}
	d.live = plan.cfg
	d.log.Info("configuration reloaded", "changed", strings.Join(plan.changed, ","), "needs_restart", strings.Join(plan.refused, ","))
}

// logConfigErrors logs each mistake of a refused configuration on its own
// line, as --config-check prints them.
func (d *daemon) logConfigErrors(err error) {
	var errs configErrors
	if !errors.As(err, &errs) {
		d.log.Error("configuration reload refused", "error", err)
		return
	}
	for _, e := range errs {
		d.log.Error("configuration reload refused", "error", e.Error())
	}
	d.log.Error("configuration reload refused: nothing changed", "errors", len(errs))
}

// apply makes the reloadable settings of cfg current. The image store is
// set first: it is the only one that can refuse, and then nothing changed.
func (d *daemon) apply(cfg config) error {
	if err := d.images.SetRegistries(cfg.Image.InsecureRegistries, storeRegistries(cfg)); err != nil {
		return fmt.Errorf("image registries: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err == nil {
		d.logs.level.Set(level)
	}
	d.logs.setFormat(cfg.LogFormat)
	return nil
}

// storeRegistries converts cfg's [image.registries] for the image store.
func storeRegistries(cfg config) map[string]rootfs.RegistryConfig {
	out := map[string]rootfs.RegistryConfig{}
	for host, rc := range cfg.Image.Registries {
		out[host] = rootfs.RegistryConfig{Mirrors: rc.Mirrors, SkipUpstream: rc.SkipUpstream}
	}
	return out
}
