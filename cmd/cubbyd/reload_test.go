package main

import (
	"slices"
	"testing"
)

func TestPlanReload(t *testing.T) {
	running := defaultConfig()
	running.Image.Registries = map[string]registryConfig{"registry.k8s.io": {Mirrors: []string{"http://dead:5000"}}}

	next := defaultConfig()
	next.LogLevel = "debug"
	next.Image.InsecureRegistries = []string{"reg.local:5000"}
	next.Image.Registries = map[string]registryConfig{
		"registry.k8s.io": {Mirrors: []string{"http://127.0.0.1:5000"}, SkipUpstream: true},
		"my.registry.io":  {Mirrors: []string{"mirror.io"}},
	}
	next.Root = "/srv/cubby"
	next.LogFormat = "json"
	next.Streaming.Address = "127.0.0.1:10010"
	next.CNI.BinDirs = []string{"/opt/cni/bin"}
	next.Metrics.Address = "127.0.0.1:9090"

	plan, err := planReload(running, next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"image.insecure_registries", "image.registries", "log_level"}; !equalSorted(plan.changed, want) {
		t.Errorf("changed = %v; want %v", plan.changed, want)
	}
	if want := []string{"cni.bin_dirs", "log_format", "metrics.address", "root", "streaming.address"}; !equalSorted(plan.refused, want) {
		t.Errorf("refused = %v; want %v", plan.refused, want)
	}
	got := plan.cfg
	if got.LogLevel != "debug" || !slices.Equal(got.Image.InsecureRegistries, next.Image.InsecureRegistries) || len(got.Image.Registries) != 2 {
		t.Errorf("reloadable settings not taken: %+v", got)
	}
	if got.Root != running.Root || got.LogFormat != running.LogFormat || got.Streaming != running.Streaming ||
		!slices.Equal(got.CNI.BinDirs, running.CNI.BinDirs) || got.Metrics != running.Metrics {
		t.Errorf("restart-only settings changed: %+v", got)
	}
}

func TestPlanReloadUnchanged(t *testing.T) {
	plan, err := planReload(defaultConfig(), defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.changed)+len(plan.refused) != 0 {
		t.Errorf("identical configs: changed %v, refused %v", plan.changed, plan.refused)
	}
}

// TestPlanReloadRegistryRemoved: a registry table that goes away is a
// change of image.registries, not of a key that needs a restart.
func TestPlanReloadRegistryRemoved(t *testing.T) {
	running := defaultConfig()
	running.Image.Registries = map[string]registryConfig{"a.io": {Mirrors: []string{"m.io"}}}
	plan, err := planReload(running, defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.changed, []string{"image.registries"}) || len(plan.refused) != 0 || len(plan.cfg.Image.Registries) != 0 {
		t.Errorf("plan = %+v", plan)
	}
}

func equalSorted(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
