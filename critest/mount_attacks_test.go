package critest

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// The tests in this file try the mount and path attacks of runc's
// advisories (and of cubby's own issue 21) from hostile containers: a
// sibling sharing a volume races the runtime, a path leads through
// /proc/1/root, a host path is swapped between create and start. Each
// checks the host afterwards.

// attempt is one container run that may be refused: its start error (nil
// when it started) and, when it ran, its output lines.
type attempt struct {
	startErr error
	lines    []string
}

// tryContainer creates cfg in pod podID, starts it, waits for it to exit
// and removes it again, returning the start error or its output. The
// create must succeed unless allowCreateErr; a failed create is returned
// as the start error then.
func tryContainer(t *testing.T, env *framework.Env, podID string, pod *runtimeapi.PodSandboxConfig, logDir string, cfg *runtimeapi.ContainerConfig, allowCreateErr bool) attempt {
	t.Helper()
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	cfg.LogPath = cfg.GetMetadata().GetName() + ".log"
	resp, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		if !allowCreateErr {
			t.Fatalf("create container %s: %v", cfg.GetMetadata().GetName(), err)
		}
		return attempt{startErr: err}
	}
	id := resp.GetContainerId()
	defer func() {
		cctx, cancel := framework.CleanupContext()
		defer cancel()
		_, _ = rs.StopContainer(cctx, &runtimeapi.StopContainerRequest{ContainerId: id})
		if _, err := rs.RemoveContainer(cctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); ignoreNotFound(err) != nil {
			t.Errorf("remove container %q: %v", id, err)
		}
		_ = os.Remove(filepath.Join(logDir, cfg.LogPath))
	}()
	if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return attempt{startErr: err}
	}
	st := waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	entries := readLogUntil(t, filepath.Join(logDir, cfg.LogPath), func(e []framework.LogEntry) bool {
		return st.GetExitCode() != 0 || slices.ContainsFunc(e, func(l framework.LogEntry) bool { return l.Content == endMarker })
	})
	var lines []string
	for _, e := range entries {
		if e.Content != endMarker {
			lines = append(lines, e.Content)
		}
	}
	return attempt{lines: lines}
}

// scriptConfig is a container of the test image running script with sh.
func scriptConfig(name, image, script string) *runtimeapi.ContainerConfig {
	return containerConfig(name, image, "", "sh", "-c", script+"\necho "+endMarker)
}

// pushImageWithFiles pushes the test image with files added as repoTag
// and returns its reference, pulled.
func pushImageWithFiles(t *testing.T, env *framework.Env, reg *testimage.Registry, repoTag string, files ...testimage.File) string {
	t.Helper()
	ctx := framework.Context(t)
	ref, err := name.ParseReference(reg.Ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimage.WithFiles(base, files...)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(ctx, img, repoTag); err != nil {
		t.Fatal(err)
	}
	return pullImage(t, env, reg.Host+"/"+repoTag)
}

// startSibling starts a long-running attacker container and stops it when
// t ends.
func startSibling(t *testing.T, env *framework.Env, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, id)
	return id
}

// deviceNodes lists the device nodes below dir on the host.
func deviceNodes(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a racing sibling removed it
		}
		if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDevVolumeNullSwapRace shares an emptyDir-like host directory as /dev
// between a sibling that keeps turning /dev/null into a symlink to
// /proc/sys/kernel/core_pattern and a victim started again and again
// (CVE-2025-31133). The victim's masked /proc/keys must never be anything
// but empty, and the runtime must not create a single device node in the
// volume.
func TestDevVolumeNullSwapRace(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("devvol", logDir)
	podID := runPod(t, env, pod)
	devDir := t.TempDir()
	corePattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}

	sib := containerConfig("devvol-sibling", reg.Ref, "", "sh", "-c",
		"while :; do ln -sfn /proc/sys/kernel/core_pattern /dev/null; rm -f /dev/null; done")
	sib.Mounts = []*runtimeapi.Mount{{HostPath: devDir, ContainerPath: "/dev"}}
	startSibling(t, env, podID, pod, sib)

	const tries = 15
	for i := range tries {
		cfg := scriptConfig("devvol-victim", reg.Ref, `echo "keys=$(head -c 64 /proc/keys)"`)
		cfg.Mounts = []*runtimeapi.Mount{{HostPath: devDir, ContainerPath: "/dev"}}
		a := tryContainer(t, env, podID, pod, logDir, cfg, false)
		if a.startErr != nil {
			t.Logf("try %d: start refused: %v", i, a.startErr)
			continue
		}
		if keys, ok := lineWithPrefix(a.lines, "keys="); !ok || keys != "" {
			t.Errorf("try %d: the masked /proc/keys shows %q (output %q); host core_pattern is %q", i, keys, a.lines, strings.TrimSpace(string(corePattern)))
		}
	}
	if now, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(now) != string(corePattern) {
		t.Errorf("host core_pattern changed from %q to %q", corePattern, now)
	}
	if nodes := deviceNodes(t, devDir); len(nodes) > 0 {
		t.Errorf("the runtime made device nodes in the /dev volume's host directory: %q", nodes)
	}
}

// TestWorkingDirThroughProc1Root gives containers of a pod sharing its pid
// namespace (PID 1 is the runtime's pod init, whose root may be the
// host's) a working directory that leads through /proc/1/root: directly,
// through a symlink in the image, and through a symlink the running
// container puts in place of its working directory before an exec. No
// directory may appear on the host; the start or the exec fails, or the
// directory is made inside the container.
func TestWorkingDirThroughProc1Root(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("wdproc", logDir)
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)
	host := t.TempDir()
	// Through /proc/1/root, host is an existing directory: what a
	// runtime creates below it appears on the host.
	via := "/proc/1/root" + host
	image := pushImageWithFiles(t, env, reg, "wdproc:1", testimage.File{Path: "/wdlink", Link: via})

	shared := func(cfg *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
		cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		return cfg
	}
	t.Run("working-dir", func(t *testing.T) {
		cfg := shared(scriptConfig("wd-direct", reg.Ref, "pwd"))
		cfg.WorkingDir = via + "/direct/sub"
		a := tryContainer(t, env, podID, pod, logDir, cfg, true)
		t.Logf("start: %v, output %q", a.startErr, a.lines)
	})
	t.Run("image-symlink", func(t *testing.T) {
		cfg := shared(scriptConfig("wd-image", image, "pwd"))
		cfg.WorkingDir = "/wdlink/image"
		a := tryContainer(t, env, podID, pod, logDir, cfg, true)
		t.Logf("start: %v, output %q", a.startErr, a.lines)
	})
	t.Run("exec-after-swap", func(t *testing.T) {
		cfg := shared(containerConfig("wd-exec", reg.Ref, "wd-exec.log", "sh", "-c",
			"cd / && rm -rf /work && ln -s "+via+" /work && echo swapped && sleep 3600"))
		cfg.WorkingDir = "/work/exec"
		id := createContainer(t, env, podID, pod, cfg)
		startContainer(t, env, id)
		readLogUntil(t, filepath.Join(logDir, cfg.LogPath), func(e []framework.LogEntry) bool {
			return slices.ContainsFunc(e, func(l framework.LogEntry) bool { return l.Content == "swapped" })
		})
		r, err := env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"pwd"}, Timeout: 10})
		t.Logf("exec: %v, %q %q", err, r.GetStdout(), r.GetStderr())
	})
	for _, n := range []string{"direct", "image", "exec"} {
		if _, err := os.Lstat(filepath.Join(host, n)); err == nil {
			t.Errorf("a working directory through /proc/1/root was made on the host: %s", filepath.Join(host, n))
		}
	}
}

// TestHostPathSwappedBetweenCreateAndStart replaces a container's host
// path volume, after CreateContainer and before StartContainer, with a
// symlink to a host directory or file holding a secret, or with another
// directory. The start must fail and the secret must stay unseen.
func TestHostPathSwappedBetweenCreateAndStart(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("hpswap", logDir)
	podID := runPod(t, env, pod)
	const secret = "host-secret-21"

	for _, tc := range []struct {
		name string
		file bool
		swap func(t *testing.T, source, secretDir string)
	}{
		{name: "dir-to-symlink", swap: func(t *testing.T, source, secretDir string) {
			mustRename(t, source, source+".orig")
			mustSymlink(t, secretDir, source)
		}},
		{name: "dir-to-other-dir", swap: func(t *testing.T, source, secretDir string) {
			mustRename(t, source, source+".orig")
			mustRename(t, secretDir, source)
		}},
		{name: "parent-to-symlink", swap: func(t *testing.T, source, secretDir string) {
			parent := filepath.Dir(source)
			mustRename(t, parent, parent+".orig")
			mustSymlink(t, filepath.Dir(secretDir), parent)
		}},
		{name: "file-to-symlink", file: true, swap: func(t *testing.T, source, secretDir string) {
			mustRename(t, source, source+".orig")
			mustSymlink(t, filepath.Join(secretDir, "secret"), source)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			vol := filepath.Join(base, "vols", "vol")
			secretDir := filepath.Join(base, "secrets", "vol")
			for _, d := range []string{vol, secretDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(secretDir, "secret"), []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			source, target, script := vol, "/mnt", "cat /mnt/secret; ls /mnt"
			if tc.file {
				source = filepath.Join(vol, "file")
				if err := os.WriteFile(source, []byte("volume file\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				target, script = "/mnt/file", "cat /mnt/file"
			}
			cfg := scriptConfig("hpswap-"+tc.name, reg.Ref, script)
			cfg.Mounts = []*runtimeapi.Mount{{HostPath: source, ContainerPath: target}}
			cfg.LogPath = cfg.GetMetadata().GetName() + ".log"
			id := createContainer(t, env, podID, pod, cfg)
			tc.swap(t, source, secretDir)
			_, err := env.RuntimeService().StartContainer(framework.Context(t), &runtimeapi.StartContainerRequest{ContainerId: id})
			if err == nil {
				waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
				entries, _ := framework.ReadLog(filepath.Join(logDir, cfg.LogPath))
				t.Errorf("the start followed the swapped host path; the container printed %q", contents(entries))
				return
			}
			t.Logf("start refused: %v", err)
		})
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// procOK is a script line that prints proc=ok when /proc is a working
// procfs in the container.
const procOK = `[ -r /proc/self/status ] && echo proc=ok || echo proc=missing`

// TestMountTargetSymlinkExchangeRace shares a volume between a sibling
// that keeps exchanging a directory in it with a symlink to /proc/sys
// (renameat2 RENAME_EXCHANGE in a tight loop) and a victim that mounts a
// second volume at that directory (CVE-2021-30465). The second volume
// must land on the directory or the start fail: never on the victim's
// procfs.
func TestMountTargetSymlinkExchangeRace(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	image := pushImageWithFiles(t, env, reg, "exchange:1", testimage.File{Path: "/bin/exchange", Mode: 0o755, Data: buildStaticHelper(t, "cubby/critest/testimage/exchange")})
	logDir := t.TempDir()
	pod := podConfig("exchange", logDir)
	podID := runPod(t, env, pod)
	shared, other := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(shared, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "/proc/sys", filepath.Join(shared, "l"))
	sib := containerConfig("exchange-sibling", image, "", "exchange", "/v/a", "/v/l")
	sib.Mounts = []*runtimeapi.Mount{{HostPath: shared, ContainerPath: "/v"}}
	startSibling(t, env, podID, pod, sib)

	const tries = 20
	landed, refused := 0, 0
	for i := range tries {
		cfg := scriptConfig("exchange-victim", reg.Ref, procOK+`
[ -e /proc/sys/marker ] && echo landed=proc
echo done`)
		cfg.Mounts = []*runtimeapi.Mount{
			{HostPath: shared, ContainerPath: "/v"},
			{HostPath: other, ContainerPath: "/v/a"},
		}
		a := tryContainer(t, env, podID, pod, logDir, cfg, false)
		if a.startErr != nil {
			refused++
			continue
		}
		if !slices.Contains(a.lines, "proc=ok") || slices.Contains(a.lines, "landed=proc") {
			t.Errorf("try %d: the volume covered the victim's /proc/sys: %q", i, a.lines)
			landed++
		}
	}
	t.Logf("%d of %d starts refused, %d landed on /proc/sys", refused, tries, landed)
}

// TestVolumeSymlinkToProc mounts a volume at a path that a shared volume
// turns into a symlink to /proc (CVE-2019-19921, CVE-2023-27561), and
// runs an image whose own /proc is a symlink. The container's /proc must
// stay a procfs with its masked and read-only paths, or the start fail.
func TestVolumeSymlinkToProc(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("procsym", logDir)
	podID := runPod(t, env, pod)
	const check = procOK + `
ls /proc/w-marker /proc/sys/w-marker /proc/sys/kernel/w-marker 2>/dev/null | sed 's/^/landed=/'
echo "keys=$(head -c 64 /proc/keys)"
(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo sys=writable
echo done`

	t.Run("volume-symlink", func(t *testing.T) {
		shared, other := t.TempDir(), t.TempDir()
		mustSymlink(t, "/proc", filepath.Join(shared, "x"))
		if err := os.WriteFile(filepath.Join(other, "w-marker"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"/v/x", "/v/x/sys", "/v/x/sys/kernel"} {
			cfg := scriptConfig("procsym-volume", reg.Ref, check)
			cfg.Mounts = []*runtimeapi.Mount{
				{HostPath: shared, ContainerPath: "/v"},
				{HostPath: other, ContainerPath: target},
			}
			a := tryContainer(t, env, podID, pod, logDir, cfg, true)
			if a.startErr != nil {
				t.Logf("%s: start refused: %v", target, a.startErr)
				continue
			}
			checkProcIntact(t, target, a.lines)
		}
	})
	t.Run("image-proc-symlink", func(t *testing.T) {
		image := pushImageWithFiles(t, env, reg, "procsym:1",
			testimage.File{Path: "/fake/keys", Mode: 0o644, Data: []byte("fake keys\n")},
			testimage.File{Path: "/proc", Link: "/fake"})
		a := tryContainer(t, env, podID, pod, logDir, scriptConfig("procsym-image", image, check), true)
		if a.startErr != nil {
			t.Logf("start refused: %v", a.startErr)
			return
		}
		checkProcIntact(t, "image /proc", a.lines)
	})
}

func checkProcIntact(t *testing.T, what string, lines []string) {
	t.Helper()
	if !slices.Contains(lines, "proc=ok") {
		t.Errorf("%s: the container's /proc is not a procfs: %q", what, lines)
	}
	if l, ok := lineWithPrefix(lines, "landed="); ok {
		t.Errorf("%s: the volume landed on the container's procfs at %s", what, l)
	}
	if keys, _ := lineWithPrefix(lines, "keys="); keys != "" {
		t.Errorf("%s: /proc/keys is not masked: %q", what, lines)
	}
	if slices.Contains(lines, "sys=writable") {
		t.Errorf("%s: /proc/sys is writable: %q", what, lines)
	}
}

// TestTerminalPtsRedirectedInDevVolume starts a terminal container whose
// /dev volume a sibling prepared: "pts" is a symlink that leads through
// /proc/1/root to the host's devpts (CVE-2025-52565 shape). The container
// must not get a terminal on the host's devpts: the start fails, or its
// terminal is on another devpts instance.
func TestTerminalPtsRedirectedInDevVolume(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	var hostPts unix.Stat_t
	if err := unix.Stat("/dev/pts/ptmx", &hostPts); err != nil {
		t.Skipf("no host devpts: %v", err)
	}
	logDir := t.TempDir()
	pod := podConfig("ptsredirect", logDir)
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)
	devDir := t.TempDir()
	mustSymlink(t, "/proc/1/root/dev/pts", filepath.Join(devDir, "pts"))
	mustSymlink(t, "pts/ptmx", filepath.Join(devDir, "ptmx"))

	cfg := containerConfig("ptsredirect", reg.Ref, "", "sleep", "3600")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	cfg.Tty, cfg.Stdin = true, true
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: devDir, ContainerPath: "/dev"}}
	id := createContainer(t, env, podID, pod, cfg)
	if _, err := env.RuntimeService().StartContainer(framework.Context(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Logf("start refused: %v", err)
	} else {
		_, info := containerStatus(t, env, id, true)
		pid := verboseInfo(t, "container status", info).Pid
		var tty unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc", strconv.Itoa(pid), "fd", "0"), &tty); err != nil {
			t.Fatalf("stat the container's terminal: %v", err)
		}
		if tty.Dev == hostPts.Dev {
			t.Errorf("the container's terminal is on the host's devpts (device %d)", tty.Dev)
		}
	}
	if nodes := deviceNodes(t, devDir); len(nodes) > 0 {
		t.Errorf("the runtime made device nodes in the /dev volume's host directory: %q", nodes)
	}
}

// TestProcWriteRedirectedByMount mounts a host file where the runtime
// writes the container's oom_score_adj (/proc/self/oom_score_adj, as the
// container resolves it), a procfs write redirected through a
// container-controlled mount (CVE-2025-52881). The start must fail or the
// write reach the kernel: the host file must stay as it was.
func TestProcWriteRedirectedByMount(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("procwrite", logDir)
	podID := runPod(t, env, pod)
	// A number, so that a runtime reading the value back before writing
	// it does not stop at a parse error.
	const orig = "0\n"

	for _, target := range []string{"/proc/self/oom_score_adj", "/proc/1/oom_score_adj"} {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, []byte(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := scriptConfig("procwrite", reg.Ref, "cat /proc/self/oom_score_adj")
		cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: 321}
		cfg.Mounts = []*runtimeapi.Mount{{HostPath: file, ContainerPath: target}}
		a := tryContainer(t, env, podID, pod, logDir, cfg, true)
		t.Logf("%s: start %v, output %q", target, a.startErr, a.lines)
		if b, _ := os.ReadFile(file); string(b) != orig {
			t.Errorf("%s: the runtime's procfs write went to the mounted host file: %q", target, b)
		}
	}
}
