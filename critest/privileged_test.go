package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// privilegedScript prints the container's seccomp mode, effective capabilities
// and the mounts the tests care about, and whether a host-only device is
// there.
const privilegedScript = `grep -E '^(Seccomp|CapEff):' /proc/self/status
grep -E ' /(sys|proc/sys|proc/keys|sys/fs/cgroup) ' /proc/mounts | while read src dst typ opts rest; do echo "mount $dst ${opts%%,*}"; done
test -e /dev/kmsg && echo kmsg=yes || echo kmsg=no
touch /tmp/f && chmod 600 /tmp/f && echo chmod=ok || echo chmod=denied`

// TestPrivileged checks a privileged container from inside: every
// capability, no seccomp even when a profile is asked for, writable /sys,
// nothing masked or read-only under /proc, the host's devices; and that a
// privileged container needs a privileged pod.
func TestPrivileged(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("privileged", logDir)
	pod.Linux.SecurityContext.Privileged = true
	podID := runPod(t, env, pod)
	profile := filepath.Join(t.TempDir(), "block-chmod.json")
	if err := os.WriteFile(profile, []byte(blockChmodProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, hostKmsg := os.Stat("/dev/kmsg")
	_, hostKeys := os.Stat("/proc/keys")

	for _, priv := range []bool{true, false} {
		name := "unprivileged"
		if priv {
			name = "privileged"
		}
		t.Run(name, func(t *testing.T) {
			cfg := containerConfig(name, reg.Ref, "")
			cfg.Linux.SecurityContext.Privileged = priv
			cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}
			_, lines := runScript(t, env, podID, pod, logDir, cfg, privilegedScript)
			sets := map[string]string{}
			for _, l := range lines {
				if k, v, ok := strings.Cut(l, ":"); ok {
					sets[k] = strings.TrimSpace(v)
				}
			}
			wantMounts := []string{"mount /sys ro", "mount /sys/fs/cgroup ro", "mount /proc/sys ro"}
			if hostKeys == nil {
				wantMounts = append(wantMounts, "mount /proc/keys rw") // masked
			}
			wantSeccomp, wantChmod, wantKmsg := "2", "chmod=denied", "kmsg=no"
			if priv {
				wantMounts = []string{"mount /sys rw", "mount /sys/fs/cgroup rw"}
				wantSeccomp, wantChmod = "0", "chmod=ok"
				if hostKmsg == nil {
					wantKmsg = "kmsg=yes"
				}
				// Every capability cubbyd has; SYS_ADMIN at least.
				if eff := sets["CapEff"]; len(eff) != 16 || !strings.ContainsAny(eff[len(eff)-6:len(eff)-5], "2367abef") {
					t.Errorf("CapEff %q lacks CAP_SYS_ADMIN", eff)
				}
			}
			if sets["Seccomp"] != wantSeccomp {
				t.Errorf("Seccomp: %q, want %q", sets["Seccomp"], wantSeccomp)
			}
			var mounts []string
			for _, l := range lines {
				if strings.HasPrefix(l, "mount ") {
					mounts = append(mounts, l)
				}
			}
			for _, w := range wantMounts {
				if !slices.Contains(mounts, w) {
					t.Errorf("mounts %q lack %q", mounts, w)
				}
			}
			if priv && len(mounts) != len(wantMounts) {
				t.Errorf("mounts %q: want only %q (nothing masked or read-only)", mounts, wantMounts)
			}
			for _, w := range []string{wantChmod, wantKmsg} {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
		})
	}

	t.Run("privileged-in-unprivileged-pod", func(t *testing.T) {
		plain := podConfig("unprivileged", logDir)
		plainID := runPod(t, env, plain)
		cfg := containerConfig("privileged", reg.Ref, "", "true")
		cfg.Linux.SecurityContext.Privileged = true
		resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: plainID, Config: cfg, SandboxConfig: plain})
		if err == nil {
			t.Fatalf("privileged container in an unprivileged pod was created (%q)", resp.GetContainerId())
		}
	})
}
