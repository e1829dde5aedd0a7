package critest

import (
	"os"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestDevices checks the devices cgroup from inside the container: a host
// device asked for is there and usable, a device node the container makes
// itself is not, and a missing host device fails at create.
func TestDevices(t *testing.T) {
	// /dev/loop-control is harmless to open: it does nothing without an
	// ioctl.
	const hostDev = "/dev/loop-control"
	if _, err := os.Stat(hostDev); err != nil {
		t.Skipf("needs %s on the host: %v", hostDev, err)
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("devices", logDir)
	podID := runPod(t, env, pod)

	const script = `test -c /dev/lc && echo node=yes || echo node=no
true < /dev/lc && echo open=ok || echo open=denied
mknod /tmp/own c 10 237 && { true < /tmp/own && echo own=ok || echo own=denied; }`
	for _, tc := range []struct {
		name    string
		devices []*runtimeapi.Device
		want    []string
	}{
		{name: "granted", devices: []*runtimeapi.Device{{HostPath: hostDev, ContainerPath: "/dev/lc", Permissions: "rw"}},
			want: []string{"node=yes", "open=ok"}},
		{name: "none", want: []string{"node=no", "own=denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("dev-"+tc.name, reg.Ref, "")
			cfg.Devices = tc.devices
			_, lines := runScript(t, env, podID, pod, logDir, cfg, script)
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		cfg := containerConfig("dev-missing", reg.Ref, "", "true")
		cfg.Devices = []*runtimeapi.Device{{HostPath: "/dev/no-such-device", ContainerPath: "/dev/x", Permissions: "rw"}}
		resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err == nil {
			t.Fatalf("CreateContainer with a missing device succeeded (%q)", resp.GetContainerId())
		}
	})
}
