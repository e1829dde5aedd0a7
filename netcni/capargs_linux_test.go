package netcni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// recorderPlugin is a CNI plugin that saves the config it is given for
// each command in $dir/<command>.json and answers ADD with one address.
const recorderPlugin = `#!/bin/sh
cat > "%s/$CNI_COMMAND.json"
if [ "$CNI_COMMAND" = ADD ]; then
	echo '{"cniVersion":"1.0.0","ips":[{"address":"10.254.0.2/24"}]}'
fi
`

// TestCapabilityArgs checks that port mappings, bandwidth and DNS reach a
// plugin that declares those capabilities, in runtimeConfig.
func TestCapabilityArgs(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat(filepath.Join(pluginDir, "loopback")); err != nil {
		t.Skipf("cni plugins not installed in %s", pluginDir)
	}
	bin, rec, conf := t.TempDir(), t.TempDir(), t.TempDir()
	script := []byte(fmtScript(rec))
	if err := os.WriteFile(filepath.Join(bin, "recorder"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfList(t, conf, "10-rec.conflist", confList{
		CNIVersion: "1.0.0",
		Name:       "rec-" + randHex(4),
		Plugins: []any{map[string]any{
			"type":         "recorder",
			"capabilities": map[string]bool{"portMappings": true, "bandwidth": true, "dns": true},
		}},
	})
	m, err := New(Config{ConfDir: conf, BinDirs: []string{bin, pluginDir}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pod := PodNetwork{
		ID: "cubbytest" + randHex(16), Name: "web", Namespace: "default", UID: randHex(8),
		NetNSPath:    newNetNS(t),
		PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80}},
		Bandwidth:    &Bandwidth{IngressRate: 1e6, IngressBurst: 1 << 32, EgressRate: 2e6, EgressBurst: 1 << 32},
		DNS:          &DNS{Servers: []string{"10.96.0.10"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
	}
	res, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Teardown(context.Background(), pod) })
	if len(res.IPs) != 1 || res.IPs[0].String() != "10.254.0.2" {
		t.Errorf("result IPs %v", res.IPs)
	}
	b, err := os.ReadFile(filepath.Join(rec, "ADD.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RuntimeConfig struct {
			PortMappings []portMapEntry `json:"portMappings"`
			Bandwidth    Bandwidth      `json:"bandwidth"`
			DNS          DNS            `json:"dns"`
		} `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	rc := got.RuntimeConfig
	if len(rc.PortMappings) != 1 || rc.PortMappings[0].HostPort != 8080 || rc.PortMappings[0].ContainerPort != 80 {
		t.Errorf("portMappings %+v", rc.PortMappings)
	}
	if rc.Bandwidth != *pod.Bandwidth {
		t.Errorf("bandwidth %+v, want %+v", rc.Bandwidth, *pod.Bandwidth)
	}
	if !reflect.DeepEqual(rc.DNS, *pod.DNS) {
		t.Errorf("dns %+v, want %+v", rc.DNS, *pod.DNS)
	}
}

func fmtScript(dir string) string { return fmt.Sprintf(recorderPlugin, dir) }
