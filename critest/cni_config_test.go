package critest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// networkCondition returns the NetworkReady condition of Status.
func networkCondition(t *testing.T, env *framework.Env) *runtimeapi.RuntimeCondition {
	t.Helper()
	resp, err := env.RuntimeService().Status(framework.Context(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetStatus().GetConditions() {
		if c.GetType() == runtimeapi.NetworkReady {
			return c
		}
	}
	t.Fatalf("no NetworkReady condition in %v", resp.GetStatus())
	return nil
}

// TestCNIConfigChanges edits a private daemon's CNI conf dir while it runs:
// a config that appears makes the network ready, and a broken one never
// takes it down again.
func TestCNIConfigChanges(t *testing.T) {
	if suite.Options().External() {
		t.Skip("edits a private daemon's CNI conf dir; -endpoint given")
	}
	var cni framework.CNIConfig
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		cni = c.CNI
		if err := os.MkdirAll(c.CNI.ConfDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.CNI.ConfDir, "10-broken.conflist"), []byte(`{"name": `), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	c := networkCondition(t, env)
	if c.GetStatus() || !strings.Contains(c.GetMessage(), "10-broken.conflist") {
		t.Errorf("with only a broken config: NetworkReady %v, want false naming the file", c)
	}

	good, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       cni.DefaultNetworkName,
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": cni.DefaultBridge, "isGateway": true,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": cni.DefaultSubnet}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(cni.ConfDir, "20-good.conflist")
	if err := os.WriteFile(goodFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	c = networkCondition(t, env)
	if !c.GetStatus() {
		t.Errorf("after a good config appeared: NetworkReady %v, want true", c)
	}
	if !strings.Contains(c.GetMessage(), "10-broken.conflist") {
		t.Errorf("NetworkReady message %q does not say the broken file is ignored", c.GetMessage())
	}
	_, subnet, _ := net.ParseCIDR(cni.DefaultSubnet)
	runAndCheckIP := func(name string) {
		t.Helper()
		pod := podConfig(name, t.TempDir())
		id := runPod(t, env, pod)
		st, _ := podStatus(t, env, id, false)
		if ip := net.ParseIP(st.GetNetwork().GetIp()); ip == nil || !subnet.Contains(ip) {
			t.Errorf("pod %s IP %q, want one in %s", name, st.GetNetwork().GetIp(), subnet)
		}
		removePod(t, env, id)
	}
	runAndCheckIP("appeared")

	// The good config is rewritten broken: the network stays.
	if err := os.Remove(filepath.Join(cni.ConfDir, "10-broken.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, []byte(`{"name": "x", "plugins": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	c = networkCondition(t, env)
	if !c.GetStatus() || !strings.Contains(c.GetMessage(), "20-good.conflist") {
		t.Errorf("after the config broke: NetworkReady %v, want true, naming the broken file", c)
	}
	runAndCheckIP("kept")
}

// TestCNIAddFailure: a plugin that fails ADD (here host-local, whose only
// address is the gateway's) makes RunPodSandbox fail with the
// plugin's message, and nothing of the pod is left: no pod, no mounts.
func TestCNIAddFailure(t *testing.T) {
	if suite.Options().External() {
		t.Skip("configures a private daemon's CNI; -endpoint given")
	}
	var cfg framework.DaemonConfig
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		cfg = *c
		if err := os.MkdirAll(c.CNI.ConfDir, 0o700); err != nil {
			t.Fatal(err)
		}
		bad := `{"cniVersion": "1.0.0", "name": "` + c.CNI.DefaultNetworkName + `", "plugins": [{"type": "bridge", "bridge": "` +
			c.CNI.DefaultBridge + `", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/30", "rangeStart": "10.250.0.1", "rangeEnd": "10.250.0.1", "gateway": "10.250.0.1"}]]}}]}`
		if err := os.WriteFile(filepath.Join(c.CNI.ConfDir, "10-bad-ipam.conflist"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	pod := podConfig("addfail", t.TempDir())
	_, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded with a failing plugin")
	}
	if !strings.Contains(err.Error(), "no IP addresses available") {
		t.Errorf("error %q does not carry the plugin's message", err)
	}
	list, err := env.RuntimeService().ListPodSandbox(framework.Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetItems()) != 0 {
		t.Errorf("pods left after a failed RunPodSandbox: %v", list.GetItems())
	}
	mounts, err := framework.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if strings.HasPrefix(m.MountPoint, cfg.State) {
			t.Errorf("mount %s left under the state dir", m.MountPoint)
		}
	}
}

// TestDualStack: a dual-stack network gives the pod an IPv4 address (the
// primary one) and an IPv6 one in additional_ips, both on its interface.
func TestDualStack(t *testing.T) {
	if suite.Options().External() {
		t.Skip("configures a private daemon's CNI; -endpoint given")
	}
	v6 := "fd42:" + framework.RandomHex(2) + ":" + framework.RandomHex(2) + "::/64"
	var cni framework.CNIConfig
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		cni = c.CNI
		conf, err := json.Marshal(map[string]any{
			"cniVersion": "1.0.0",
			"name":       c.CNI.DefaultNetworkName,
			"plugins": []any{map[string]any{
				"type": "bridge", "bridge": c.CNI.DefaultBridge, "isGateway": true,
				"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{
					{{"subnet": v6}}, {{"subnet": c.CNI.DefaultSubnet}},
				}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(c.CNI.ConfDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.CNI.ConfDir, "10-dual.conflist"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	podID := runPod(t, env, podConfig("dualstack", t.TempDir()))
	st, info := podStatus(t, env, podID, true)
	ip := net.ParseIP(st.GetNetwork().GetIp())
	_, v4net, _ := net.ParseCIDR(cni.DefaultSubnet)
	_, v6net, _ := net.ParseCIDR(v6)
	if ip == nil || !v4net.Contains(ip) {
		t.Errorf("pod IP %q, want an IPv4 address in %s first", st.GetNetwork().GetIp(), v4net)
	}
	extra := st.GetNetwork().GetAdditionalIps()
	if len(extra) != 1 || !v6net.Contains(net.ParseIP(extra[0].GetIp())) {
		t.Fatalf("additional IPs %v, want one in %s", extra, v6net)
	}
	netns := verboseInfo(t, "pod", info).NamespacePath("network")
	out, err := framework.InNetns(netns, "ip", "-6", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, extra[0].GetIp()) {
		t.Errorf("eth0 in the pod lacks %s:\n%s", extra[0].GetIp(), out)
	}
}

// flakyPlugin is a CNI plugin that logs every command to $dir/calls and
// fails DEL while $dir/fail-del exists.
const flakyPlugin = `#!/bin/sh
cat > /dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID" >> "%[1]s/calls"
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","ips":[{"address":"10.253.0.2/24"}]}' ;;
DEL) if [ -e "%[1]s/fail-del" ]; then
	echo '{"cniVersion":"1.0.0","code":999,"msg":"flaky del failed on purpose"}'
	exit 1
fi ;;
esac
`

// TestCNIDelRetried: a CNI DEL that fails fails StopPodSandbox and is run
// again by the next Stop or Remove; once it succeeded it is not repeated.
func TestCNIDelRetried(t *testing.T) {
	if suite.Options().External() {
		t.Skip("configures a private daemon's CNI; -endpoint given")
	}
	bin, rec := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "flaky"), []byte(fmt.Sprintf(flakyPlugin, rec)), 0o755); err != nil {
		t.Fatal(err)
	}
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) {
		c.CNI.BinDirs = []string{bin, "/usr/lib/cni", "/opt/cni/bin"}
		if err := os.MkdirAll(c.CNI.ConfDir, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := `{"cniVersion": "1.0.0", "name": "` + c.CNI.DefaultNetworkName + `", "plugins": [{"type": "flaky"}]}`
		if err := os.WriteFile(filepath.Join(c.CNI.ConfDir, "10-flaky.conflist"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	rs := env.RuntimeService()
	ctx := framework.Context(t)
	pod := podConfig("delretry", t.TempDir())
	resp, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetPodSandboxId()
	failMarker := filepath.Join(rec, "fail-del")
	if err := os.WriteFile(failMarker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(failMarker); removePod(t, env, id) })
	dels := func() int {
		b, _ := os.ReadFile(filepath.Join(rec, "calls"))
		return strings.Count(string(b), "DEL "+id)
	}

	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err == nil || !strings.Contains(err.Error(), "flaky del failed on purpose") {
		t.Errorf("StopPodSandbox with a failing DEL: err = %v, want the plugin's message", err)
	}
	if st, _ := podStatus(t, env, id, false); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod state %s after the failed stop, want NOTREADY", st.GetState())
	}
	failed := dels()
	if failed == 0 {
		t.Fatal("the plugin saw no DEL")
	}
	if err := os.Remove(failMarker); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("StopPodSandbox once DEL works: %v", err)
	}
	if dels() <= failed {
		t.Errorf("the second StopPodSandbox did not run DEL again")
	}
	done := dels()
	if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if dels() != done {
		t.Errorf("DEL ran %d more times after it succeeded", dels()-done)
	}
}
