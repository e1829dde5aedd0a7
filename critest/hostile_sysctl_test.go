package critest

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodSysctlEscapesToKernelCorePattern is a pod whose sysctl names
// start in the network namespace and climb out of it
// ("net/../kernel/core_pattern", the node's core dump handler) or are
// otherwise not clean names: each is refused with InvalidArgument naming
// it, before anything runs, and the node's core_pattern is untouched.
func TestPodSysctlEscapesToKernelCorePattern(t *testing.T) {
	env := suite.NewEnv(t)
	before, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Skipf("cannot read the node's core_pattern: %v", err)
	}
	for _, name := range []string{
		"net/../kernel/core_pattern",
		"net.//.kernel.core_pattern", // the same in dotted form
		"net/ipv4/../../kernel/core_pattern",
		"net.ipv4..ip_forward",
		"net/./ipv4/ip_forward",
		"net//ipv4/ip_forward",
	} {
		pod := podConfig("sysctl-escape", t.TempDir())
		pod.Linux.Sysctls = map[string]string{name: "|/tmp/pwned"}
		resp, err := env.RuntimeService().RunPodSandbox(framework.Context(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err == nil {
			removePod(t, env, resp.GetPodSandboxId())
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), name) {
			t.Errorf("sysctl %q: err = %v, want InvalidArgument naming it", name, err)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(after) != string(before) {
		t.Errorf("the node's core_pattern changed from %q to %q", before, after)
	}
}
