package critest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// blockChmodProfile is an OCI seccomp profile that allows everything but
// chmod and its siblings.
const blockChmodProfile = `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["chmod", "fchmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]
}`

// seccompScript prints the process's seccomp mode and whether it may make
// a new user namespace (the default profile forbids that without
// CAP_SYS_ADMIN) and chmod a file.
const seccompScript = `grep '^Seccomp:' /proc/self/status
unshare -U true && echo unshare=ok || echo unshare=denied
touch /tmp/f && chmod 600 /tmp/f && echo chmod=ok || echo chmod=denied`

// TestSeccomp checks each way to choose a container's seccomp profile from
// inside the container: the mode in /proc/self/status and what the filter
// lets through.
func TestSeccomp(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("seccomp", logDir)
	podID := runPod(t, env, pod)
	profile := filepath.Join(t.TempDir(), "block-chmod.json")
	if err := os.WriteFile(profile, []byte(blockChmodProfile), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		profile *runtimeapi.SecurityProfile
		path    string // the deprecated seccomp_profile_path
		nnp     bool
		mode    string
		unshare string
		chmod   string
	}{
		{name: "nil-is-unconfined", mode: "0", unshare: "ok", chmod: "ok"},
		{name: "empty-is-runtime-default", profile: &runtimeapi.SecurityProfile{}, mode: "2", unshare: "denied", chmod: "ok"},
		{name: "runtime-default", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, mode: "2", unshare: "denied", chmod: "ok"},
		{name: "runtime-default-no-new-privs", profile: &runtimeapi.SecurityProfile{}, nnp: true, mode: "2", unshare: "denied", chmod: "ok"},
		{name: "unconfined", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, mode: "0", unshare: "ok", chmod: "ok"},
		{name: "localhost", profile: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}, mode: "2", unshare: "ok", chmod: "denied"},
		{name: "path-runtime-default", path: "runtime/default", mode: "2", unshare: "denied", chmod: "ok"},
		{name: "path-localhost", path: "localhost/" + profile, mode: "2", unshare: "ok", chmod: "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("seccomp-"+tc.name, reg.Ref, "")
			cfg.Linux.SecurityContext.Seccomp = tc.profile
			//lint:ignore SA1019 older clients still send only the path
			cfg.Linux.SecurityContext.SeccompProfilePath = tc.path
			cfg.Linux.SecurityContext.NoNewPrivs = tc.nnp
			_, lines := runScript(t, env, podID, pod, logDir, cfg, seccompScript)
			if got, _ := lineWithPrefix(lines, "Seccomp:"); got != tc.mode {
				t.Errorf("Seccomp: %q, want %q (output %q)", got, tc.mode, lines)
			}
			if got, _ := lineWithPrefix(lines, "unshare="); got != tc.unshare {
				t.Errorf("unshare -U: %q, want %q (output %q)", got, tc.unshare, lines)
			}
			if got, _ := lineWithPrefix(lines, "chmod="); got != tc.chmod {
				t.Errorf("chmod: %q, want %q (output %q)", got, tc.chmod, lines)
			}
		})
	}

	t.Run("localhost-missing-file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-profile.json")
		cfg := containerConfig("seccomp-missing", reg.Ref, "", "true")
		cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: missing}
		resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err == nil {
			t.Fatalf("CreateContainer with a missing seccomp profile succeeded (container %q)", resp.GetContainerId())
		}
		if !strings.Contains(err.Error(), missing) {
			t.Errorf("error %q does not name the missing profile %q", err, missing)
		}
	})
}

// TestSeccompExec checks that a process exec'd into a container runs
// under the container's seccomp filter, with and without no_new_privs.
func TestSeccompExec(t *testing.T) {
	env := suite.NewEnv(t)
	for _, nnp := range []bool{false, true} {
		name := "seccomp-exec"
		if nnp {
			name += "-nnp"
		}
		t.Run(name, func(t *testing.T) {
			_, id := runSleeper(t, env, name, func(c *runtimeapi.ContainerConfig) {
				c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
				c.Linux.SecurityContext.NoNewPrivs = nnp
			})
			resp := execSync(t, env, id, 10, "sh", "-c", seccompScript)
			out := strings.Split(strings.TrimSpace(string(resp.GetStdout())), "\n")
			if got, _ := lineWithPrefix(out, "Seccomp:"); got != "2" {
				t.Errorf("exec'd process: Seccomp: %q, want 2 (output %q)", got, out)
			}
			if got, _ := lineWithPrefix(out, "unshare="); got != "denied" {
				t.Errorf("exec'd process: unshare -U %q, want denied (output %q)", got, out)
			}
		})
	}
}
