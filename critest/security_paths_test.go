package critest

import (
	"os"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestSecurityContextPaths checks readonly_rootfs, no_new_privs and the
// request's masked and read-only paths from inside the container, and
// that AppArmor and SELinux settings are handled without surprises.
func TestSecurityContextPaths(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("paths", logDir)
	podID := runPod(t, env, pod)

	for _, tc := range []struct {
		name   string
		set    func(*runtimeapi.LinuxContainerSecurityContext)
		script string
		want   []string
	}{
		{name: "readonly-rootfs", set: func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.ReadonlyRootfs = true },
			script: `touch /newfile 2>&1; echo > /dev/shm/ok && echo devshm=writable`,
			want:   []string{"touch: /newfile: Read-only file system", "devshm=writable"}},
		{name: "writable-rootfs", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {},
			script: `touch /newfile && echo rootfs=writable`, want: []string{"rootfs=writable"}},
		{name: "no-new-privs", set: func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.NoNewPrivs = true },
			script: `grep NoNewPrivs /proc/self/status`, want: []string{"NoNewPrivs:\t1"}},
		{name: "new-privs", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {},
			script: `grep NoNewPrivs /proc/self/status`, want: []string{"NoNewPrivs:\t0"}},
		{name: "masked-and-readonly", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.MaskedPaths = []string{"/etc/passwd", "/var"}
			sc.ReadonlyPaths = []string{"/tmp"}
		}, script: `echo "passwd=$(wc -c < /etc/passwd)"; echo "var=$(ls -A /var | wc -l)"; touch /tmp/x 2>&1`,
			want: []string{"passwd=0", "var=0", "touch: /tmp/x: Read-only file system"}},
		{name: "selinux-and-apparmor-defaults", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.SelinuxOptions = &runtimeapi.SELinuxOption{User: "system_u", Role: "system_r", Type: "container_t", Level: "s0:c1,c2"}
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		}, script: `echo ran`, want: []string{"ran"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("paths-"+tc.name, reg.Ref, "")
			tc.set(cfg.Linux.SecurityContext)
			_, lines := runScript(t, env, podID, pod, logDir, cfg, tc.script)
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
		})
	}

	// A named AppArmor profile cannot be honoured on a host without
	// AppArmor: the container must not start silently unconfined.
	t.Run("apparmor-localhost", func(t *testing.T) {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err == nil {
			t.Skip("AppArmor is enabled on this host")
		}
		cfg := containerConfig("apparmor-localhost", reg.Ref, "", "true")
		cfg.Linux.SecurityContext.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "cubby-test-profile"}
		resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err == nil {
			t.Fatalf("CreateContainer with an AppArmor profile on a host without AppArmor succeeded (%q)", resp.GetContainerId())
		}
	})
}
