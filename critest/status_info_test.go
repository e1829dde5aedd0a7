package critest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestStatusVerboseInfo asks for what crictl info shows: a verbose Status
// carries JSON entries for the config in effect, the cgroup setup, the CNI
// networks, the security features and the version, each with the values
// the private daemon was started with.
func TestStatusVerboseInfo(t *testing.T) {
	if suite.Options().External() {
		t.Skip("compares with a private daemon's config; -endpoint given")
	}
	env := suite.NewEnv(t)
	ctx := framework.Context(t)
	resp, err := env.RuntimeService().Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	entry := func(key string, v any) {
		t.Helper()
		raw, ok := resp.GetInfo()[key]
		if !ok {
			t.Fatalf("info has no %q entry: keys %v", key, keysOf(resp.GetInfo()))
		}
		if err := json.Unmarshal([]byte(raw), v); err != nil {
			t.Fatalf("info[%q] = %s: not JSON: %v", key, raw, err)
		}
	}
	cfg := env.Daemon.Config

	var config struct {
		Root   string `json:"root"`
		Listen string `json:"listen"`
		Image  struct {
			Platform          string `json:"platform"`
			NoProgressTimeout string `json:"no_progress_timeout"`
		} `json:"image"`
		CNI struct {
			DefaultBridge string `json:"default_bridge"`
		} `json:"cni"`
	}
	entry("config", &config)
	if config.Root != cfg.Root || config.Listen != cfg.Listen || config.CNI.DefaultBridge != cfg.CNI.DefaultBridge ||
		config.Image.Platform == "" || config.Image.NoProgressTimeout != "5m0s" {
		t.Errorf("config entry %+v does not match the daemon's config %+v", config, cfg)
	}

	var cgroup struct {
		Version int    `json:"version"`
		Driver  string `json:"driver"`
	}
	entry("cgroup", &cgroup)
	wantVersion := 1
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		wantVersion = 2
	}
	if cgroup.Version != wantVersion || cgroup.Driver != "cgroupfs" {
		t.Errorf("cgroup entry %+v; want version %d, driver cgroupfs", cgroup, wantVersion)
	}

	var cni struct {
		ConfDir  string   `json:"confDir"`
		BinDirs  []string `json:"binDirs"`
		Networks []struct {
			Name    string   `json:"name"`
			Source  string   `json:"source"`
			Plugins []string `json:"plugins"`
		} `json:"networks"`
		LastError *string `json:"lastError"`
	}
	entry("cni", &cni)
	if cni.ConfDir != cfg.CNI.ConfDir || len(cni.BinDirs) == 0 || cni.LastError == nil {
		t.Errorf("cni entry %+v; want conf dir %s, bin dirs and a lastError field", cni, cfg.CNI.ConfDir)
	}
	if len(cni.Networks) != 1 || cni.Networks[0].Name != cfg.CNI.DefaultNetworkName || cni.Networks[0].Source != "built-in" || len(cni.Networks[0].Plugins) == 0 {
		t.Errorf("cni networks %+v; want the built-in %s", cni.Networks, cfg.CNI.DefaultNetworkName)
	}

	var security struct {
		Seccomp struct {
			Enabled           bool    `json:"enabled"`
			LibseccompVersion string  `json:"libseccompVersion"`
			UnsetProfile      *string `json:"unsetProfile"`
		} `json:"seccomp"`
		AppArmor *struct {
			HostEnabled bool `json:"hostEnabled"`
		} `json:"apparmor"`
	}
	entry("security", &security)
	if !security.Seccomp.Enabled || strings.Count(security.Seccomp.LibseccompVersion, ".") != 2 ||
		security.Seccomp.UnsetProfile == nil || *security.Seccomp.UnsetProfile != "" || security.AppArmor == nil {
		t.Errorf("security entry %s", resp.GetInfo()["security"])
	}

	var version struct{ Version, Commit, Go string }
	entry("version", &version)
	v, err := env.RuntimeService().Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if version.Version != v.GetRuntimeVersion() || !strings.HasPrefix(version.Go, "go") || version.Commit == "" {
		t.Errorf("version entry %+v; Version says %s", version, v.GetRuntimeVersion())
	}

	// Not verbose: no info, as kubelet asks.
	plain, err := env.RuntimeService().Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.GetInfo()) != 0 {
		t.Errorf("Status without verbose has info %v", keysOf(plain.GetInfo()))
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
