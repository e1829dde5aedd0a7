package critest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestHostileRequests sends pod and container configs with path tricks, NUL
// bytes and huge fields. Each is refused with InvalidArgument or handled
// safely: the object keeps its name as given, nothing is written outside
// its place, and removing it leaves nothing behind.
func TestHostileRequests(t *testing.T) {
	env := suite.NewEnv(t)
	if !env.Private {
		t.Skip("checks a private cubbyd's host footprint")
	}
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	rs := env.RuntimeService()
	// What the first pod sets up once (CNI caches) is not a leftover.
	removePod(t, env, runPod(t, env, podConfig("hostile-warmup", "")))
	footBefore := readHostFootprint(t, env)
	outside := t.TempDir() // a place nothing may be written to

	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		pod  func(*runtimeapi.PodSandboxConfig)
		ctr  func(*runtimeapi.ContainerConfig)
	}{
		{name: "pod-name-dotdot", pod: func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name = "../../" + p.Metadata.Name }},
		{name: "pod-namespace-dotdot", pod: func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Namespace = "../../../tmp" }},
		{name: "pod-uid-slash", pod: func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Uid = "../" + p.Metadata.Uid + "/x" }},
		{name: "pod-name-nul", pod: func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name += "\x00evil" }},
		{name: "pod-name-4k", pod: func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name = strings.Repeat("n", 4096) }},
		{name: "pod-label-1m", pod: func(p *runtimeapi.PodSandboxConfig) { p.Labels["big"] = huge }},
		{name: "pod-hostname-dotdot", pod: func(p *runtimeapi.PodSandboxConfig) { p.Hostname = "../../etc" }},
		{name: "pod-logdir-relative", pod: func(p *runtimeapi.PodSandboxConfig) { p.LogDirectory = "../../" + filepath.Base(outside) }},
		{name: "ctr-name-dotdot", ctr: func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "../../../x" }},
		{name: "ctr-name-nul", ctr: func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "a\x00b" }},
		{name: "ctr-name-4k", ctr: func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = strings.Repeat("c", 4096) }},
		{name: "ctr-label-1m", ctr: func(c *runtimeapi.ContainerConfig) { c.Annotations = map[string]string{"big": huge} }},
		{name: "ctr-logpath-escape", ctr: func(c *runtimeapi.ContainerConfig) {
			c.LogPath = "../../../../../../../../" + strings.TrimPrefix(outside, "/") + "/escape.log"
		}},
		{name: "ctr-logpath-absolute", ctr: func(c *runtimeapi.ContainerConfig) { c.LogPath = filepath.Join(outside, "abs.log") }},
		{name: "ctr-logpath-nul", ctr: func(c *runtimeapi.ContainerConfig) { c.LogPath = "a\x00b.log" }},
		{name: "ctr-workdir-dotdot", ctr: func(c *runtimeapi.ContainerConfig) {
			c.WorkingDir = "/../../../../" + strings.TrimPrefix(outside, "/") + "/wd"
		}},
		{name: "ctr-env-nul", ctr: func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "A\x00B", Value: []byte("v")}}
		}},
		{name: "ctr-image-dotdot", ctr: func(c *runtimeapi.ContainerConfig) { c.Image.Image = "../../../etc/passwd" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := framework.Context(t)
			pod := podConfig("hostile", t.TempDir())
			if tc.pod != nil {
				tc.pod(pod)
			}
			run, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			if tc.pod != nil {
				if code := status.Code(err); code != codes.OK {
					if code != codes.InvalidArgument {
						t.Fatalf("RunPodSandbox: %v, want OK or InvalidArgument", err)
					}
					return
				}
			} else if err != nil {
				t.Fatalf("RunPodSandbox: %v", err)
			}
			podID := run.GetPodSandboxId()
			t.Cleanup(func() { removePod(t, env, podID) })
			st, _ := podStatus(t, env, podID, false)
			if got, want := st.GetMetadata().GetName(), pod.GetMetadata().GetName(); got != want {
				t.Errorf("pod name %q comes back as %q", want, got)
			}
			if got, want := len(st.GetLabels()["big"]), len(pod.GetLabels()["big"]); got != want {
				t.Errorf("label of %d bytes comes back with %d", want, got)
			}
			if tc.ctr == nil {
				return
			}
			cfg := containerConfig("hostile", reg.Ref, "hostile.log", "sh", "-c", "echo out; pwd")
			tc.ctr(cfg)
			cr, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if code := status.Code(err); code != codes.OK {
				if code != codes.InvalidArgument && code != codes.NotFound {
					t.Fatalf("CreateContainer: %v, want OK, InvalidArgument or (for the image) NotFound", err)
				}
				return
			}
			id := cr.GetContainerId()
			if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err == nil {
				waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			}
			cs, _ := containerStatus(t, env, id, false)
			if got, want := cs.GetMetadata().GetName(), cfg.GetMetadata().GetName(); got != want {
				t.Errorf("container name %q comes back as %q", want, got)
			}
			if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Errorf("remove: %v", err)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("files written outside the pod's places: %v", ents)
	}
	if !env.Daemon.Running() {
		t.Fatal("cubbyd died")
	}
	t.Run("leftovers", func(t *testing.T) {
		// The subtests' pods are removed by their cleanups, which ran.
		if extra := diffFootprint(footBefore, readHostFootprint(t, env)); len(extra) > 0 {
			t.Errorf("hostile requests left %d things behind:\n%s", len(extra), strings.Join(extra, "\n"))
		}
	})
}

// TestDuplicateNames checks that a pod or a container asked for twice under
// the same name (as kubelet does when a call outlived its deadline) is made
// once: the second call hands back the first id or fails with AlreadyExists,
// never makes a second object.
func TestDuplicateNames(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	rs := env.RuntimeService()
	ctx := framework.Context(t)
	pod := podConfig("dup", t.TempDir())
	podID := runPod(t, env, pod)
	again, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	switch {
	case status.Code(err) == codes.AlreadyExists:
	case err != nil:
		t.Fatalf("second RunPodSandbox: %v, want the same id or AlreadyExists", err)
	case again.GetPodSandboxId() != podID:
		removePod(t, env, again.GetPodSandboxId())
		t.Fatalf("second RunPodSandbox made pod %q besides %q", again.GetPodSandboxId(), podID)
	}
	pods, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{labelName: "dup"}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pods.GetItems()); n != 1 {
		t.Errorf("%d pods named %q, want 1", n, pod.GetMetadata().GetName())
	}

	cfg := containerConfig("dup", reg.Ref, "dup.log", "sleep", "4242")
	id := createContainer(t, env, podID, pod, cfg)
	second, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	switch {
	case status.Code(err) == codes.AlreadyExists:
	case err != nil:
		t.Fatalf("second CreateContainer: %v, want the same id or AlreadyExists", err)
	case second.GetContainerId() != id:
		t.Errorf("second CreateContainer made container %q besides %q", second.GetContainerId(), id)
	}
	ctrs, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ctrs.GetContainers()); n != 1 {
		t.Errorf("%d containers named %q, want 1", n, cfg.GetMetadata().GetName())
	}
	// Once removed, the name is free again.
	if _, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	reused := createContainer(t, env, podID, pod, cfg)
	if reused == id {
		t.Errorf("the reused name got the removed container's id %q", id)
	}
}

// hostileLayer is a layer tar whose entries try to write outside the
// rootfs: absolute and ../ names, a symlink and a hardlink that point out
// of it with writes through them, and a device node. Read inside the
// rootfs, every entry is valid.
func hostileLayer(t *testing.T, outside string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := "../../../../../../../../../../" + strings.TrimPrefix(outside, "/")
	write := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: filepath.Join(outside, "absolute"), Typeflag: tar.TypeReg}, "absolute")
	write(&tar.Header{Name: rel + "/dotdot", Typeflag: tar.TypeReg}, "dotdot")
	write(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
	write(&tar.Header{Name: "evil/through-symlink", Typeflag: tar.TypeReg}, "symlink")
	write(&tar.Header{Name: "evilrel", Typeflag: tar.TypeSymlink, Linkname: rel}, "")
	write(&tar.Header{Name: "evilrel/through-relative-symlink", Typeflag: tar.TypeReg}, "symlink")
	// The hardlinks' targets, read inside the rootfs, exist there: the
	// layer is valid when its names are.
	write(&tar.Header{Name: filepath.Join(outside, "secret"), Typeflag: tar.TypeReg}, "layer decoy")
	write(&tar.Header{Name: "hardlink", Typeflag: tar.TypeLink, Linkname: filepath.Join(outside, "secret")}, "")
	write(&tar.Header{Name: "hardlink-rel", Typeflag: tar.TypeLink, Linkname: rel + "/secret"}, "")
	write(&tar.Header{Name: "kmem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 2, Mode: 0o666}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileLayer pulls an image whose layer tries to escape its rootfs
// (through a loopback registry) and checks that nothing is written outside
// it: the pull fails with a clear error or succeeds with the entries kept
// inside, and a container of the image sees no host file.
func TestHostileLayer(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	outside := t.TempDir()
	const secret = "host secret"
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := framework.Context(t)
	baseRef, err := name.ParseReference(reg.Ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(baseRef, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	data := hostileLayer(t, outside)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(ctx, img, "hostile:1"); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/hostile:1"

	checkOutside := func() {
		t.Helper()
		ents, _ := os.ReadDir(outside)
		for _, e := range ents {
			if e.Name() != "secret" {
				t.Errorf("the layer wrote %s outside the rootfs", filepath.Join(outside, e.Name()))
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(outside, "secret"), &st); err == nil && st.Nlink != 1 {
			t.Errorf("the host file has %d links: the layer linked to it", st.Nlink)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != secret {
			t.Errorf("the host file was changed to %q", b)
		}
	}

	_, err = env.ImageService().PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	checkOutside()
	if err != nil {
		if code := status.Code(err); code == codes.Unknown || code == codes.Internal {
			t.Errorf("pull of the hostile image: %v, want a clear error code", err)
		}
		t.Logf("pull refused: %v", err)
		return
	}
	t.Cleanup(func() {
		cctx, cancel := framework.CleanupContext()
		defer cancel()
		_, _ = env.ImageService().RemoveImage(cctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	})
	pod := podConfig("hostile-layer", t.TempDir())
	podID := runPod(t, env, pod)
	id := createContainer(t, env, podID, pod, containerConfig("hostile-layer", ref, "", "sleep", "4242"))
	startContainer(t, env, id)
	resp := execSync(t, env, id, 0, "sh", "-c", "cat /hardlink /hardlink-rel /evil/secret /evilrel/secret 2>/dev/null; head -c 1 /kmem >/dev/null 2>&1 && echo kmem=readable; echo done")
	out := string(resp.GetStdout())
	t.Logf("from the container: %q", out)
	if strings.Contains(out, secret) {
		t.Errorf("the container reads the host file through the layer: %q", out)
	}
	if strings.Contains(out, "kmem=readable") {
		t.Errorf("the layer's device node is usable in the container: %q", out)
	}
	checkOutside()
}
