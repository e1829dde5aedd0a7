package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// hostMount mounts on the host for a test and detaches it (with everything
// below it) when the test ends.
func hostMount(t *testing.T, source, target, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(source, target, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
	if flags&(unix.MS_SHARED|unix.MS_SLAVE|unix.MS_PRIVATE) != 0 && fstype == "" && source == "" {
		return // a propagation change, not a new mount
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", target, err)
		}
	})
}

// TestVolumeMounts checks bind mounts from inside the container: written
// files reach the host, read-only is the top mount only unless recursive,
// a symlinked host path is followed, and bad mounts fail at create.
func TestVolumeMounts(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("volumes", logDir)
	podID := runPod(t, env, pod)

	// host/ holds a file and a tmpfs submount; link -> host.
	base := t.TempDir()
	host := filepath.Join(base, "host")
	if err := os.MkdirAll(filepath.Join(host, "tmpfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostMount(t, "tmpfs", filepath.Join(host, "tmpfs"), "tmpfs", 0)
	link := filepath.Join(base, "link")
	if err := os.Symlink(host, link); err != nil {
		t.Fatal(err)
	}

	const script = `cat /mnt/hello
touch /mnt/top 2>/dev/null && echo top=rw || echo top=ro
touch /mnt/tmpfs/sub 2>/dev/null && echo sub=rw || echo sub=ro`
	for _, tc := range []struct {
		name  string
		mount *runtimeapi.Mount
		want  []string
	}{
		{name: "read-write", mount: &runtimeapi.Mount{HostPath: host},
			want: []string{"from-host", "top=rw", "sub=rw"}},
		{name: "read-only", mount: &runtimeapi.Mount{HostPath: host, Readonly: true},
			want: []string{"from-host", "top=ro", "sub=rw"}},
		{name: "recursive-read-only", mount: &runtimeapi.Mount{HostPath: host, Readonly: true, RecursiveReadOnly: true},
			want: []string{"from-host", "top=ro", "sub=ro"}},
		{name: "symlink", mount: &runtimeapi.Mount{HostPath: link, Readonly: true},
			want: []string{"from-host", "top=ro", "sub=rw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("vol-"+tc.name, reg.Ref, "")
			tc.mount.ContainerPath = "/mnt"
			cfg.Mounts = []*runtimeapi.Mount{tc.mount}
			_, lines := runScript(t, env, podID, pod, logDir, cfg, script)
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(host, "top")); err != nil {
		t.Errorf("file written in the container is not on the host: %v", err)
	}

	for _, tc := range []struct {
		name  string
		mount *runtimeapi.Mount
	}{
		{name: "missing-host-path", mount: &runtimeapi.Mount{HostPath: filepath.Join(base, "missing")}},
		{name: "relative-container-path", mount: &runtimeapi.Mount{HostPath: host, ContainerPath: "mnt"}},
		{name: "rro-not-readonly", mount: &runtimeapi.Mount{HostPath: host, RecursiveReadOnly: true}},
		{name: "rro-rslave", mount: &runtimeapi.Mount{HostPath: host, Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
		// host is on a private mount of the test machine's: nothing can
		// propagate back from it.
		{name: "bidirectional-private-host-mount", mount: &runtimeapi.Mount{HostPath: host,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "bidirectional-private-host-mount" && sharedMount(t, host) {
				t.Skip("the test directory is on a shared mount on this host")
			}
			cfg := containerConfig("bad-"+tc.name, reg.Ref, "", "true")
			if tc.mount.ContainerPath == "" {
				tc.mount.ContainerPath = "/mnt"
			}
			cfg.Mounts = []*runtimeapi.Mount{tc.mount}
			resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if err == nil {
				t.Fatalf("CreateContainer succeeded (container %q)", resp.GetContainerId())
			}
		})
	}

	resp, err := env.RuntimeService().Status(t.Context(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rro := slices.ContainsFunc(resp.GetRuntimeHandlers(), func(h *runtimeapi.RuntimeHandler) bool {
		return h.GetName() == "" && h.GetFeatures().GetRecursiveReadOnlyMounts()
	})
	if !rro {
		t.Errorf("Status does not advertise recursive read-only mounts for the default handler: %v", resp.GetRuntimeHandlers())
	}
}

// sharedMount reports whether path's mount on the host is shared.
func sharedMount(t *testing.T, path string) bool {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		t.Fatal(err)
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return best != nil && strings.Contains(best.Optional, "shared:")
}

// TestMountPropagation checks the three propagation modes as a pod would
// see them: a mount made on the host below the volume after the container
// started, and a mount the container makes below it.
func TestMountPropagation(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("propagation", logDir)
	pod.Linux.SecurityContext.Privileged = true
	podID := runPod(t, env, pod)

	for _, tc := range []struct {
		name                        string
		prop                        runtimeapi.MountPropagation
		hostMakes                   uintptr // propagation of the host's volume mount
		seesHostMount, hostSeesMine bool
	}{
		{"private", runtimeapi.MountPropagation_PROPAGATION_PRIVATE, unix.MS_PRIVATE, false, false},
		{"host-to-container", runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, unix.MS_SHARED, true, false},
		{"bidirectional", runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, unix.MS_SHARED, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			vol := filepath.Join(base, "vol")
			src := filepath.Join(base, "src")
			for _, d := range []string{filepath.Join(vol, "fromhost"), filepath.Join(vol, "fromctr"), src} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(src, "flag"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			hostMount(t, vol, vol, "", unix.MS_BIND|unix.MS_REC)
			hostMount(t, "", vol, "", tc.hostMakes|unix.MS_REC)

			cfg := containerConfig("prop-"+tc.name, reg.Ref, "prop-"+tc.name+".log")
			cfg.Linux.SecurityContext.Privileged = true
			cfg.Mounts = []*runtimeapi.Mount{{HostPath: vol, ContainerPath: "/vol", Propagation: tc.prop}}
			cfg.Command = []string{"sh", "-c", `while [ ! -e /vol/go ]; do sleep 0.1; done
echo "fromhost=$(ls -A /vol/fromhost)"
mount --bind /etc /vol/fromctr && echo mounted
sleep 3600`}
			cid := createContainer(t, env, podID, pod, cfg)
			startContainer(t, env, cid)

			hostMount(t, src, filepath.Join(vol, "fromhost"), "", unix.MS_BIND)
			if err := os.WriteFile(filepath.Join(vol, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			entries := readLogUntil(t, filepath.Join(logDir, cfg.LogPath), func(e []framework.LogEntry) bool {
				return slices.ContainsFunc(e, func(l framework.LogEntry) bool { return l.Content == "mounted" })
			})
			lines := contents(entries)
			wantHost := "stdout fromhost="
			if tc.seesHostMount {
				wantHost += "flag"
			}
			if !slices.Contains(lines, wantHost) {
				t.Errorf("container output %q lacks %q", lines, wantHost)
			}
			mine, err := os.ReadDir(filepath.Join(vol, "fromctr"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(mine) > 0; got != tc.hostSeesMine {
				t.Errorf("host sees the container's mount: %v, want %v", got, tc.hostSeesMine)
			}
			if tc.hostSeesMine {
				t.Cleanup(func() { _ = unix.Unmount(filepath.Join(vol, "fromctr"), unix.MNT_DETACH) })
			}
		})
	}
}

// TestImageVolumes checks that a path the image declares as a volume is a
// writable directory in the container, even with a read-only rootfs, and
// that a mount at that path replaces it.
func TestImageVolumes(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("imagevolumes", logDir)
	podID := runPod(t, env, pod)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "mark"), []byte("host-dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "touch " + testimage.Volume + "/new && echo writable; cat " + testimage.Volume + "/mark 2>/dev/null"

	cfg := containerConfig("imagevol", reg.Ref, "")
	_, lines := runScript(t, env, podID, pod, logDir, cfg, script)
	if !slices.Contains(lines, "writable") {
		t.Errorf("image volume %s is not a writable directory: %q", testimage.Volume, lines)
	}
	cfg = containerConfig("imagevol-readonly-rootfs", reg.Ref, "")
	cfg.Linux.SecurityContext.ReadonlyRootfs = true
	_, lines = runScript(t, env, podID, pod, logDir, cfg, script+"; touch /other 2>/dev/null || echo root=ro")
	if !slices.Contains(lines, "writable") || !slices.Contains(lines, "root=ro") {
		t.Errorf("with a read-only rootfs, image volume %s is not writable or the root is: %q", testimage.Volume, lines)
	}
	cfg = containerConfig("imagevol-mounted", reg.Ref, "")
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: host, ContainerPath: testimage.Volume}}
	_, lines = runScript(t, env, podID, pod, logDir, cfg, script)
	if !slices.Contains(lines, "host-dir") {
		t.Errorf("the mount at %s does not replace the image volume: %q", testimage.Volume, lines)
	}
}
