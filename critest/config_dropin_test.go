package critest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestConfigDropInApplies writes a drop-in into config.d next to the
// private cubbyd's config and checks that the restarted daemon uses it: the
// streaming server moves to the port the drop-in names. A drop-in with a
// typo is refused by --config-check with its file, line and key.
func TestConfigDropInApplies(t *testing.T) {
	if suite.Options().External() {
		t.Skip("writes the private cubbyd's config files; the runtime is external")
	}
	env := suite.NewEnv(t)
	dropIns := filepath.Join(filepath.Dir(env.Daemon.ConfigPath), "config.d")
	if err := os.MkdirAll(dropIns, 0o755); err != nil {
		t.Fatal(err)
	}
	port := int(freePort(t))
	streaming := "[streaming]\naddress = \"127.0.0.1:" + strconv.Itoa(port) + "\"\n"
	if err := os.WriteFile(filepath.Join(dropIns, "10-streaming.toml"), []byte(streaming), 0o644); err != nil {
		t.Fatal(err)
	}
	env.StartAgain(t)

	podID := runPod(t, env, podConfig("dropin", t.TempDir()))
	resp, err := env.RuntimeService().PortForward(framework.Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{80}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port) + "/"; !strings.Contains(resp.GetUrl(), want) {
		t.Errorf("PortForward URL %q, want the drop-in's %s", resp.GetUrl(), want)
	}

	bad := filepath.Join(dropIns, "20-typo.toml")
	if err := os.WriteFile(bad, []byte("# a typo\n[streaming]\naddres = \"127.0.0.1:0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(suite.Cubbyd(t), "--config", env.Daemon.ConfigPath, "--config-check").CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad+":3: streaming.addres: unknown key") {
		t.Errorf("cubbyd --config-check with a typo in %s: %v\n%s", bad, err, out)
	}
}
