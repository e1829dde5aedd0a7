package critest

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// TestSeccompSyscallNewerThanProfile is a container under RuntimeDefault
// making a syscall the profile cannot know (number 1000, beyond every
// table): it must fail with ENOSYS, as on a kernel without it, so a libc
// falls back to an older syscall instead of failing on EPERM; the syscalls
// the profile knows and blocks (keyctl; unshare without CAP_SYS_ADMIN)
// still fail with EPERM.
func TestSeccompSyscallNewerThanProfile(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ref := pushSysnoImage(t, reg)
	pullImage(t, env, ref)
	logDir := t.TempDir()
	pod := podConfig("seccomp-enosys", logDir)
	podID := runPod(t, env, pod)

	cfg := containerConfig("sysno", ref, "sysno.log", "/sysno", "1000", "keyctl", "unshare")
	cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	id := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, id)
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	entries := readLogUntil(t, filepath.Join(logDir, "sysno.log"), func(e []framework.LogEntry) bool { return len(e) >= 3 })
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Content)
	}
	for _, want := range []struct {
		call  string
		errno syscall.Errno
	}{{"1000", syscall.ENOSYS}, {"keyctl", syscall.EPERM}, {"unshare", syscall.EPERM}} {
		if got, _ := lineWithPrefix(lines, want.call+"="); got != strconv.Itoa(int(want.errno)) {
			t.Errorf("syscall %s under RuntimeDefault: errno %s, want %d (%v) (output %q)", want.call, got, int(want.errno), want.errno, lines)
		}
	}
}

// pushSysnoImage builds the sysno helper (testdata/sysno) statically and
// pushes an image holding only it to reg; it returns the image reference.
func pushSysnoImage(t *testing.T, reg *testimage.Registry) string {
	t.Helper()
	data := buildStaticHelper(t, "cubby/critest/testdata/sysno")
	img, err := testimage.WithFiles(empty.Image, testimage.File{Path: "/sysno", Mode: 0o755, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(framework.Context(t), img, "sysno:1"); err != nil {
		t.Fatal(err)
	}
	return reg.Host + "/sysno:1"
}
