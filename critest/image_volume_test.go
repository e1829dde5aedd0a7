package critest

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestImageVolume checks image volumes (Mount.image): the image's files
// appear read-only at the mount, sub_path picks a directory of it, the
// status names the image by the id PullImage returned, a writable image
// volume or a missing sub_path is refused, and nothing stays mounted once
// the container is removed.
func TestImageVolume(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ref := pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("imagevolume", logDir)
	podID := runPod(t, env, pod)
	rs := env.RuntimeService()

	const script = `test -x /iv/bin/busybox && echo busybox=yes
grep -q '^cubby:' /iv/passwd && echo passwd=yes
touch /iv/new 2>/dev/null && echo iv=rw || echo iv=ro`
	var ids []string
	for _, tc := range []struct {
		name, sub string
		want      []string
	}{
		{"whole-image", "", []string{"busybox=yes", "iv=ro"}},
		{"sub-path", "etc", []string{"passwd=yes", "iv=ro"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("iv-"+tc.name, reg.Ref, "")
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/iv", Readonly: true, ImageSubPath: tc.sub,
				Image: &runtimeapi.ImageSpec{Image: reg.Ref, UserSpecifiedImage: reg.Ref}}}
			st, lines := runScript(t, env, podID, pod, logDir, cfg, script)
			ids = append(ids, st.GetId())
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
			i := slices.IndexFunc(st.GetMounts(), func(m *runtimeapi.Mount) bool { return m.GetContainerPath() == "/iv" })
			if i < 0 || st.GetMounts()[i].GetImage().GetImageRef() != ref {
				t.Errorf("ContainerStatus mounts %v: want /iv with image_ref %q", st.GetMounts(), ref)
			}
		})
	}

	for _, tc := range []struct {
		name  string
		mount *runtimeapi.Mount
	}{
		{"writable", &runtimeapi.Mount{ContainerPath: "/iv", Image: &runtimeapi.ImageSpec{Image: reg.Ref}}},
		{"missing-sub-path", &runtimeapi.Mount{ContainerPath: "/iv", Readonly: true, ImageSubPath: "no/such/dir", Image: &runtimeapi.ImageSpec{Image: reg.Ref}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("iv-bad-"+tc.name, reg.Ref, "", "true")
			cfg.Mounts = []*runtimeapi.Mount{tc.mount}
			resp, err := rs.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if err == nil {
				t.Fatalf("CreateContainer succeeded (%q)", resp.GetContainerId())
			}
		})
	}

	for _, id := range ids {
		if _, err := rs.RemoveContainer(t.Context(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("RemoveContainer %q: %v", id, err)
		}
	}
	checkNoMounts(t, ids...)
}
