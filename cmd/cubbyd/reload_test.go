package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cubby/rootfs"
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
	if want := []string{"image.insecure_registries", "image.registries", "log_format", "log_level"}; !equalSorted(plan.changed, want) {
		t.Errorf("changed = %v; want %v", plan.changed, want)
	}
	if want := []string{"cni.bin_dirs", "metrics.address", "root", "streaming.address"}; !equalSorted(plan.refused, want) {
		t.Errorf("refused = %v; want %v", plan.refused, want)
	}
	got := plan.cfg
	if got.LogLevel != "debug" || got.LogFormat != "json" || !slices.Equal(got.Image.InsecureRegistries, next.Image.InsecureRegistries) || len(got.Image.Registries) != 2 {
		t.Errorf("reloadable settings not taken: %+v", got)
	}
	if got.Root != running.Root || got.Streaming != running.Streaming ||
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

// TestReload runs reloads against a real image store and logger: a
// config with a mistake is refused with its file:line: key, a good one
// sets the log level and the mirrors and names the keys that need a
// restart.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root")
	write(fmt.Sprintf("root = %q\n", root))
	load := func() (*configSet, error) { return loadConfigSet(path, true, nil) }
	cs, err := load()
	if err != nil {
		t.Fatal(err)
	}
	images, err := rootfs.Open(rootfs.Config{Root: filepath.Join(root, "images")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { images.Close() })
	var logged bytes.Buffer
	level := logLevel("info")
	logs := newLogSink(level, "text", &logged, false)
	d := &daemon{cfg: cs.cfg, live: cs.cfg, images: images, logs: logs, log: logs.logger().With("component", "test")}

	write(fmt.Sprintf("root = %q\nlog_level = \"loud\"\n[image.registries.\"registry.k8s.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n", root))
	d.reload(load)
	if want := path + ":2: log_level:"; !strings.Contains(logged.String(), want) || strings.Contains(logged.String(), `msg="configuration reloaded"`) {
		t.Errorf("bad config: log lacks %q or reloaded anyway:\n%s", want, logged.String())
	}
	if len(d.live.Image.Registries) != 0 || level.Level() != slog.LevelInfo {
		t.Errorf("a refused config changed the running one: %+v, level %v", d.live.Image, level.Level())
	}

	logged.Reset()
	write(fmt.Sprintf("root = %q\nlog_level = \"debug\"\nlisten = \"/run/other.sock\"\n[image.registries.\"registry.k8s.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n", root+"-moved"))
	d.reload(load)
	out := logged.String()
	for _, want := range []string{
		`key=root set_in=` + path + `:1`,
		`key=listen set_in=` + path + `:3`,
		`changed=image.registries,log_level needs_restart=listen,root`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if level.Level() != slog.LevelDebug || d.live.Root != root || len(d.live.Image.Registries) != 1 {
		t.Errorf("after reload: level %v, root %q, registries %v", level.Level(), d.live.Root, d.live.Image.Registries)
	}

	// log_format too: the next lines, of loggers made before, are JSON.
	logged.Reset()
	write(fmt.Sprintf("root = %q\nlog_format = \"json\"\n", root))
	d.reload(load)
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "{") || !strings.Contains(last, `"msg":"configuration reloaded"`) || !strings.Contains(last, `"component":"test"`) {
		t.Errorf("after log_format = json, the last line is %q", last)
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("log_level left out: level %v, want the default info", level.Level())
	}
	write(fmt.Sprintf("root = %q\nlog_level = \"debug\"\n[image.registries.\"registry.k8s.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n", root))
	d.reload(load)

	// A mirror the image store refuses: nothing changes.
	logged.Reset()
	write(fmt.Sprintf("root = %q\n[image.registries.\"registry.k8s.io\"]\nmirrors = [\"ftp://x\"]\n", root))
	d.reload(load)
	if !strings.Contains(logged.String(), `msg="configuration reload refused"`) || level.Level() != slog.LevelDebug ||
		d.live.Image.Registries["registry.k8s.io"].Mirrors[0] != "http://127.0.0.1:5000" {
		t.Errorf("a mirror the store refuses: level %v, registries %v, log:\n%s", level.Level(), d.live.Image.Registries, logged.String())
	}
}
