package server

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/rootfs"
	"cubby/sandbox"
)

// FuzzRequestMapping decodes arbitrary bytes as the pod and container
// configs of a CreateContainer request (as gRPC would) and runs them
// through validation and the CRI → OCI mapping. Whatever the input, the
// mapping never panics, and a spec it returns has a command to run and
// keeps every mount target absolute and inside the container.
func FuzzRequestMapping(f *testing.F) {
	seeds := []struct {
		pod       *runtimeapi.PodSandboxConfig
		container *runtimeapi.ContainerConfig
	}{
		{
			&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}, Hostname: "h"},
			&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, Command: []string{"sh"}},
		},
		{
			&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "../..", Namespace: "\x00"}, Hostname: string(make([]byte, 100))},
			&runtimeapi.ContainerConfig{
				Metadata:   &runtimeapi.ContainerMetadata{Name: "c/../x"},
				Image:      &runtimeapi.ImageSpec{Image: "busybox"},
				LogPath:    "../../etc/passwd",
				WorkingDir: "../../../",
				Envs:       []*runtimeapi.KeyValue{{Key: "A=B", Value: []byte("\xff\xfe")}},
				Mounts:     []*runtimeapi.Mount{{ContainerPath: "../../x", HostPath: "/nonexistent"}, {ContainerPath: "", HostPath: ""}},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsUsername:    "nobody\x00root",
					Capabilities:     &runtimeapi.Capability{AddCapabilities: []string{"ALL", "CAP_BOGUS"}, DropCapabilities: []string{""}},
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode(42)},
				}},
			},
		},
	}
	for _, s := range seeds {
		pb, err := proto.Marshal(s.pod)
		if err != nil {
			f.Fatal(err)
		}
		cb, err := proto.Marshal(s.container)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pb, cb)
	}

	state := f.TempDir()
	podBinary := filepath.Join(state, "cubby-pod")
	if err := os.WriteFile(podBinary, nil, 0o755); err != nil {
		f.Fatal(err)
	}
	rt, err := sandbox.New(state, podBinary)
	if err != nil {
		f.Fatal(err)
	}
	rootDir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(rootDir, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootDir, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	s := &Server{rt: rt}
	img := rootfs.Image{ID: "sha256:0", Config: rootfs.ImageConfig{Cmd: []string{"sh"}, User: "nobody"}}

	f.Fuzz(func(t *testing.T, podBytes, containerBytes []byte) {
		var podCfg runtimeapi.PodSandboxConfig
		var ctrCfg runtimeapi.ContainerConfig
		if proto.Unmarshal(podBytes, &podCfg) != nil || proto.Unmarshal(containerBytes, &ctrCfg) != nil {
			return
		}
		if validatePodConfig(&podCfg) != nil || validateContainerConfig(&ctrCfg) != nil {
			return
		}
		spec, err := s.containerSpec(specInput{
			pod:        &pod{id: "fuzzpod", config: &podCfg},
			config:     &ctrCfg,
			image:      img,
			rootfs:     rootDir,
			cgroupPath: "/fuzz/c",
		})
		if err != nil {
			return
		}
		if len(spec.Process.Args) == 0 {
			t.Fatalf("spec without a command for %v", &ctrCfg)
		}
		for _, m := range spec.Mounts {
			if !filepath.IsAbs(m.Destination) {
				t.Fatalf("mount target %q is not absolute", m.Destination)
			}
		}
	})
}
