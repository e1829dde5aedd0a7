package netcni

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfList(t *testing.T, dir, name string, list confList) {
	t.Helper()
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name), string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeBinDir returns a dir holding empty executables with the given names.
func fakeBinDir(t *testing.T, plugins ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugins {
		writeFile(t, filepath.Join(dir, p), "")
		if err := os.Chmod(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func userList(name string) confList {
	return confList{
		CNIVersion: "1.0.0",
		Name:       name,
		Plugins:    []any{map[string]any{"type": "ptp", "ipam": map[string]any{"type": "static"}}},
	}
}

func TestBuiltinNetwork(t *testing.T) {
	cfg, err := Config{DefaultBridge: "br9", DefaultSubnet: "10.9.0.0/16", IPAMDataDir: "/x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	list, err := builtinNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if list.Name != DefaultNetworkName || list.CNIVersion != "1.0.0" || len(list.Plugins) != 2 {
		t.Fatalf("built-in list = %s", list.Bytes)
	}
	var got struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(list.Bytes, &got); err != nil {
		t.Fatal(err)
	}
	br, pm := got.Plugins[0], got.Plugins[1]
	for k, want := range map[string]any{"type": "bridge", "bridge": "br9", "isGateway": true, "ipMasq": true, "hairpinMode": true} {
		if br[k] != want {
			t.Errorf("bridge %s = %v, want %v", k, br[k], want)
		}
	}
	ipam, _ := json.Marshal(br["ipam"])
	if want := `{"dataDir":"/x","ranges":[[{"subnet":"10.9.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}],"type":"host-local"}`; string(ipam) != want {
		t.Errorf("ipam = %s, want %s", ipam, want)
	}
	if pm["type"] != "portmap" || pm["snat"] != true || !list.Plugins[1].Network.Capabilities[capPortMappings] {
		t.Errorf("portmap = %v", pm)
	}

	cfg.DefaultSubnet = "fd00:88::/64"
	list, err = builtinNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(list.Bytes), `"dst":"::/0"`) {
		t.Errorf("IPv6 built-in network has no ::/0 route: %s", list.Bytes)
	}
}

func TestLoadPrefersConfDir(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // name -> content; "" content means userList(name)
		want    string            // network name, or "" for an error
		wantSrc string
	}{
		{name: "missing dir", want: DefaultNetworkName, wantSrc: "built-in"},
		{name: "empty dir", files: map[string]string{}, want: DefaultNetworkName, wantSrc: "built-in"},
		{name: "ignored extensions", files: map[string]string{"a.txt": "x", "b.conflist.bak": "x"}, want: DefaultNetworkName, wantSrc: "built-in"},
		{name: "user conflist", files: map[string]string{"10-mynet.conflist": ""}, want: "10-mynet", wantSrc: "10-mynet.conflist"},
		{name: "lexically first wins", files: map[string]string{"20-b.conflist": "", "10-a.conflist": "", "30-c.conf": ""}, want: "10-a", wantSrc: "10-a.conflist"},
		{name: "single plugin conf", files: map[string]string{"05-single.conf": `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`}, want: "single", wantSrc: "05-single.conf"},
		{name: "broken file skipped", files: map[string]string{"00-broken.conflist": "{", "10-ok.conflist": ""}, want: "10-ok", wantSrc: "10-ok.conflist"},
		{name: "only broken files", files: map[string]string{"00-broken.conflist": "{", "01-noplugins.conflist": `{"name":"x","plugins":[]}`}},
		{name: "reserved name", files: map[string]string{"00.conflist": `{"name":"cni-loopback","cniVersion":"1.0.0","plugins":[{"type":"loopback"}]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "net.d")
			if tt.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, content := range tt.files {
				if content == "" {
					writeConfList(t, dir, name, userList(strings.TrimSuffix(name, filepath.Ext(name))))
				} else {
					writeFile(t, filepath.Join(dir, name), content)
				}
			}
			m, err := New(Config{ConfDir: dir, BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			name, src, err := m.NetworkName()
			if tt.want == "" {
				if !errors.Is(err, ErrNotReady) {
					t.Fatalf("NetworkName() err = %v, want ErrNotReady", err)
				}
				if serr := m.Status(); !errors.Is(serr, ErrNotReady) {
					t.Fatalf("Status() = %v, want ErrNotReady", serr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NetworkName: %v", err)
			}
			if name != tt.want || filepath.Base(src) != tt.wantSrc {
				t.Errorf("network = %q from %q, want %q from %q", name, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestReloadOnConfDirChange(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{ConfDir: dir, BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	assertNet := func(want string) {
		t.Helper()
		name, _, err := m.NetworkName()
		if err != nil || name != want {
			t.Fatalf("network = %q, %v; want %q", name, err, want)
		}
	}
	assertNet(DefaultNetworkName)

	writeConfList(t, dir, "50-first.conflist", userList("first"))
	assertNet("first")

	// Rewritten in place: a different size (and normally mtime).
	writeConfList(t, dir, "50-first.conflist", userList("first-renamed"))
	assertNet("first-renamed")

	// Same size, new mtime.
	writeConfList(t, dir, "50-first.conflist", userList("first-renamex"))
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "50-first.conflist"), future, future); err != nil {
		t.Fatal(err)
	}
	assertNet("first-renamex")

	writeConfList(t, dir, "10-earlier.conflist", userList("earlier"))
	assertNet("earlier")

	for _, f := range []string{"10-earlier.conflist", "50-first.conflist"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	assertNet(DefaultNetworkName)
}

func TestStatus(t *testing.T) {
	allBuiltin := []string{"bridge", "host-local", "portmap"}
	tests := []struct {
		name    string
		plugins []string
		missing string // plugin the error must name; "" for ready
	}{
		{name: "all present", plugins: allBuiltin},
		{name: "no bridge", plugins: []string{"host-local", "portmap"}, missing: `"bridge"`},
		{name: "no ipam", plugins: []string{"bridge", "portmap"}, missing: `"host-local"`},
		{name: "empty bin dir", missing: `"bridge"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{
				ConfDir:  filepath.Join(t.TempDir(), "none"),
				BinDirs:  []string{filepath.Join(t.TempDir(), "missing"), fakeBinDir(t, tt.plugins...)},
				CacheDir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			err = m.Status()
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("Status() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), tt.missing) {
				t.Fatalf("Status() = %v, want ErrNotReady naming %s", err, tt.missing)
			}
		})
	}
}

func TestStatusUserConfPlugins(t *testing.T) {
	dir := t.TempDir()
	writeConfList(t, dir, "10-user.conflist", userList("user")) // ptp + static
	m, err := New(Config{ConfDir: dir, BinDirs: []string{fakeBinDir(t, "bridge", "host-local", "portmap", "loopback", "ptp")}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), `"static"`) {
		t.Fatalf("Status() = %v, want ErrNotReady naming the user network's ipam plugin", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "long bridge", cfg: Config{DefaultBridge: "a-very-long-bridge"}},
		{name: "bridge with slash", cfg: Config{DefaultBridge: "a/b"}},
		{name: "bad subnet", cfg: Config{DefaultSubnet: "10.0.0.0"}},
		{name: "bad network name", cfg: Config{DefaultNetworkName: "a b"}},
		{name: "reserved network name", cfg: Config{DefaultNetworkName: loopbackNetworkName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.ok != (err == nil) {
				t.Fatalf("New() err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("New() err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestBrokenConfigKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{ConfDir: dir, BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	writeConfList(t, dir, "10-good.conflist", userList("good"))
	if name, _, err := m.NetworkName(); err != nil || name != "good" {
		t.Fatalf("network = %q, %v; want good", name, err)
	}
	if err := m.Ignored(); err != nil {
		t.Errorf("Ignored() = %v with a good config", err)
	}

	// Rewritten broken: the last good network stays, and Ignored says why.
	writeFile(t, filepath.Join(dir, "10-good.conflist"), `{"name": "good", "plugins": [`)
	if name, _, err := m.NetworkName(); err != nil || name != "good" {
		t.Fatalf("after a broken rewrite: network = %q, %v; want the last good one", name, err)
	}
	if err := m.Ignored(); err == nil || !strings.Contains(err.Error(), "10-good.conflist") {
		t.Errorf("Ignored() = %v, want it to name the broken file", err)
	}

	// A broken file next to a good one is skipped and reported.
	writeConfList(t, dir, "20-other.conflist", userList("other"))
	if name, _, err := m.NetworkName(); err != nil || name != "other" {
		t.Fatalf("network = %q, %v; want other", name, err)
	}
	if err := m.Ignored(); err == nil || !strings.Contains(err.Error(), "10-good.conflist") {
		t.Errorf("Ignored() = %v, want it to name the skipped file", err)
	}

	// Fixed: nothing ignored any more.
	if err := os.Remove(filepath.Join(dir, "10-good.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := m.Ignored(); err != nil {
		t.Errorf("Ignored() = %v after the broken file went", err)
	}
}
