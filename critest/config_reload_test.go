package critest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestConfigReloadMirrors reloads the registry mirrors with SIGHUP: a pull
// through a dead mirror fails, the config is rewritten to name the live one,
// and after SIGHUP the same pull succeeds without a restart. A config with
// errors is refused whole, and a changed key that needs a restart is logged
// and keeps its running value.
func TestConfigReloadMirrors(t *testing.T) {
	if suite.Options().External() {
		t.Skip("signals a private daemon; -endpoint given")
	}
	upstream, upstreamHits := countingRegistry(t)
	mirror, mirrorHits := countingRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadMirror := ln.Addr().String()
	ln.Close()

	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		c.Image.Registries = map[string]framework.RegistryConfig{
			upstream.Host: {Mirrors: []string{"http://" + deadMirror}, SkipUpstream: true},
		}
	})
	d := env.Daemon
	ctx := framework.Context(t)
	ref := upstream.Host + "/pause:3.9"
	if _, err := env.ImageService().PullImage(ctx, &runtimeapi.PullImageRequest{Image: imageSpec(ref)}); err == nil {
		t.Fatalf("pull %s through a dead mirror succeeded", ref)
	}

	// A config with an error: refused whole, the dead mirror stays.
	good := d.Config
	good.Image.Registries = map[string]framework.RegistryConfig{
		upstream.Host: {Mirrors: []string{"http://" + mirror.Host}, SkipUpstream: true},
	}
	if err := os.WriteFile(d.ConfigPath, []byte("log_level = \"loud\"\n[image.registries.\""+upstream.Host+"\"]\nmirrors = [\"http://"+mirror.Host+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logged, err := d.Reload(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged, d.ConfigPath+":1: log_level:") || strings.Contains(logged, `msg="configuration reloaded"`) {
		t.Errorf("a config with a bad log_level: log after SIGHUP lacks %s:1: log_level or reloads anyway:\n%s", d.ConfigPath, logged)
	}
	if _, err := env.ImageService().PullImage(ctx, &runtimeapi.PullImageRequest{Image: imageSpec(ref)}); err == nil {
		t.Fatalf("pull %s succeeded after a refused reload", ref)
	}

	// The live mirror, and a cgroup_parent that needs a restart. (root
	// would too, but the suite passes --root, which overrides the file.)
	good.CgroupParent = d.Config.CgroupParent + "-changed"
	if err := good.WriteFile(d.ConfigPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Config.WriteFile(d.ConfigPath) })
	if logged, err = d.Reload(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged, `msg="configuration change needs a restart; running value kept" key=cgroup_parent`) {
		t.Errorf("changed cgroup_parent not logged as needing a restart:\n%s", logged)
	}
	if !strings.Contains(logged, `msg="configuration reloaded" changed=image.registries`) {
		t.Errorf("reload did not report image.registries changed:\n%s", logged)
	}
	pullImage(t, env, ref)
	if mirrorHits.Load() == 0 || upstreamHits.Load() != 0 {
		t.Errorf("after reload: mirror got %d requests, upstream %d; want the mirror only", mirrorHits.Load(), upstreamHits.Load())
	}

}
