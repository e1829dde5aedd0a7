package critest

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCgroupNamespace checks that a container, privileged or not, has its
// own cgroup namespace rooted at its cgroup: /proc/self/cgroup shows "/"
// in every hierarchy, and /sys/fs/cgroup shows its own limits.
func TestCgroupNamespace(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("cgroupns", logDir)
	pod.Linux.SecurityContext.Privileged = true
	podID := runPod(t, env, pod)

	const limit = 96 << 20
	const script = `sed 's/^/cgroup /' /proc/self/cgroup
echo "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"`
	for _, priv := range []bool{false, true} {
		t.Run("privileged="+strconv.FormatBool(priv), func(t *testing.T) {
			cfg := containerConfig("cgroupns-"+strconv.FormatBool(priv), reg.Ref, "")
			cfg.Linux.SecurityContext.Privileged = priv
			cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit}
			_, lines := runScript(t, env, podID, pod, logDir, cfg, script)
			var cgroups []string
			for _, l := range lines {
				if c, ok := strings.CutPrefix(l, "cgroup "); ok {
					cgroups = append(cgroups, c)
				}
			}
			if len(cgroups) == 0 {
				t.Fatalf("no /proc/self/cgroup lines in %q", lines)
			}
			for _, c := range cgroups {
				if !strings.HasSuffix(c, ":/") {
					t.Errorf("/proc/self/cgroup line %q: want the namespace root /", c)
				}
			}
			if !slices.Contains(lines, "limit="+strconv.Itoa(limit)) {
				t.Errorf("the container's /sys/fs/cgroup does not show its memory limit %d: %q", limit, lines)
			}
		})
	}
}

// TestCgroupNamespaceExec checks that a process exec'd into a container
// is in the container's cgroup namespace too.
func TestCgroupNamespaceExec(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "cgroupns-exec", nil)
	resp := execSync(t, env, id, 10, "cat", "/proc/self/cgroup")
	lines := strings.Split(strings.TrimSpace(string(resp.GetStdout())), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("no /proc/self/cgroup lines from the exec'd process")
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("exec'd process /proc/self/cgroup line %q: want the container's namespace root /", l)
		}
	}
}
