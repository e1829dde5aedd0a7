package critest

import (
	"os/exec"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

func TestVersion(t *testing.T) {
	env := suite.NewEnv(t)
	v, err := env.RuntimeService().Version(framework.Context(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	for name, got := range map[string]string{
		"version":             v.GetVersion(),
		"runtime_name":        v.GetRuntimeName(),
		"runtime_version":     v.GetRuntimeVersion(),
		"runtime_api_version": v.GetRuntimeApiVersion(),
	} {
		if got == "" {
			t.Errorf("Version: %s is empty", name)
		}
	}
	if got := v.GetRuntimeApiVersion(); got != "v1" {
		t.Errorf("Version: runtime_api_version = %q, want v1", got)
	}
	t.Logf("runtime %s %s, CRI %s", v.GetRuntimeName(), v.GetRuntimeVersion(), v.GetRuntimeApiVersion())
}

// TestVersionMatchesCubbydBinary checks that the CRI Version RPC reports the
// same runtime version as `cubbyd --version` of the binary serving it.
func TestVersionMatchesCubbydBinary(t *testing.T) {
	if suite.Options().External() {
		t.Skip("needs the cubbyd binary the suite starts; the runtime is external")
	}
	env := suite.NewEnv(t)
	v, err := env.RuntimeService().Version(framework.Context(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	out, err := exec.Command(suite.Cubbyd(t), "--version").Output()
	if err != nil {
		t.Fatalf("cubbyd --version: %v", err)
	}
	// "cubbyd <version> (commit <hash>, go1.x)"
	fields := strings.Fields(string(out))
	if len(fields) < 5 || fields[0] != "cubbyd" || fields[2] != "(commit" || !strings.HasPrefix(fields[4], "go") {
		t.Fatalf("cubbyd --version = %q, want \"cubbyd VERSION (commit HASH, goX)\"", out)
	}
	if got := v.GetRuntimeVersion(); got != fields[1] {
		t.Errorf("Version: runtime_version = %q, cubbyd --version says %q", got, fields[1])
	}
}

func TestStatus(t *testing.T) {
	env := suite.NewEnv(t)
	resp, err := env.RuntimeService().Status(framework.Context(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range resp.GetStatus().GetConditions() {
		conds[c.GetType()] = c
	}
	rt, ok := conds[runtimeapi.RuntimeReady]
	switch {
	case !ok:
		t.Errorf("Status: no %s condition", runtimeapi.RuntimeReady)
	case !rt.GetStatus():
		t.Errorf("Status: %s is false: %s: %s", runtimeapi.RuntimeReady, rt.GetReason(), rt.GetMessage())
	}
	if net, ok := conds[runtimeapi.NetworkReady]; !ok {
		t.Errorf("Status: no %s condition", runtimeapi.NetworkReady)
	} else {
		t.Logf("%s = %v (%s)", runtimeapi.NetworkReady, net.GetStatus(), net.GetReason())
	}
}

func TestRuntimeConfig(t *testing.T) {
	env := suite.NewEnv(t)
	resp, err := env.RuntimeService().RuntimeConfig(framework.Context(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatalf("RuntimeConfig: %v", err)
	}
	if got := resp.GetLinux().GetCgroupDriver(); got != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig: cgroup driver %s, want %s", got, runtimeapi.CgroupDriver_CGROUPFS)
	}
}

// TestStatusNetworkNotReady checks that a runtime without usable CNI
// plugins reports NetworkReady=false with a reason, and RuntimeReady still.
func TestStatusNetworkNotReady(t *testing.T) {
	if suite.Options().External() {
		t.Skip("configures a private daemon's CNI; -endpoint given")
	}
	noPlugins := t.TempDir()
	env := suite.NewEnv(t, func(c *framework.DaemonConfig) { c.CNI.BinDirs = []string{noPlugins} })
	resp, err := env.RuntimeService().Status(framework.Context(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetStatus().GetConditions() {
		switch c.GetType() {
		case runtimeapi.RuntimeReady:
			if !c.GetStatus() {
				t.Errorf("RuntimeReady is false: %v", c)
			}
		case runtimeapi.NetworkReady:
			if c.GetStatus() || c.GetReason() == "" || c.GetMessage() == "" {
				t.Errorf("NetworkReady = %v, want false with a reason and message", c)
			}
			return
		}
	}
	t.Errorf("no NetworkReady condition in %v", resp.GetStatus())
}
