package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestIsolation checks, from inside a container with the default security
// context, what it must not be able to see or do: host processes, mounting,
// writing /proc/sys or /sys, reading masked paths, using devices beyond the
// default set, inheriting a runtime fd, reaching the runtime's sockets.
func TestIsolation(t *testing.T) {
	env := suite.NewEnv(t)
	_, id := runSleeper(t, env, "isolation", nil)

	// sh runs script in the container and returns its output lines.
	sh := func(t *testing.T, script string) []string {
		t.Helper()
		resp := execSync(t, env, id, 0, "sh", "-c", script)
		lines := strings.Split(strings.TrimSpace(string(resp.GetStdout())+string(resp.GetStderr())), "\n")
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		return lines
	}
	for _, tc := range []struct {
		name   string
		script string
		want   []string
	}{
		// The container's own pid namespace holds its init (the sleeper),
		// this shell and its children only.
		{name: "host-processes", script: `n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo "procs=$n"
echo "init=$(tr '\0' ' ' < /proc/1/cmdline)"`,
			want: []string{"init=sleep 4242"}},
		{name: "mount", script: `mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied
mount -o remount,rw /proc/sys 2>/dev/null && echo remount=ok || echo remount=denied`,
			want: []string{"mount=denied", "remount=denied"}},
		{name: "proc-sys-readonly", script: `echo 1 2>/dev/null > /proc/sys/kernel/domainname && echo write=ok || echo write=denied
grep -q ' /proc/sys ro[, ]' /proc/self/mountinfo && echo procsys=ro || echo procsys=rw`,
			want: []string{"write=denied", "procsys=ro"}},
		{name: "sys-readonly", script: `touch /sys/kernel/x 2>/dev/null && echo touch=ok || echo touch=denied
grep -q ' /sys ro[, ]' /proc/self/mountinfo && echo sys=ro || echo sys=rw`,
			want: []string{"touch=denied", "sys=ro"}},
		// Masked files read as empty (or cannot be opened), masked
		// directories are empty.
		{name: "masked-paths", script: `for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
  [ -e "$f" ] || continue; echo "$f=$(head -c 64 "$f" 2>/dev/null | wc -c)"; done
for d in /sys/firmware /proc/scsi /proc/acpi; do [ -d "$d" ] && echo "$d=$(ls -A "$d" | wc -l)"; done; echo done`,
			want: []string{"done"}},
		// A device node the container makes itself is useless: only the
		// default devices pass the devices cgroup.
		{name: "devices", script: `mknod /tmp/mem c 1 1 2>/dev/null; head -c 1 /tmp/mem >/dev/null 2>&1 && echo mem=ok || echo mem=denied
mknod /tmp/kmsg c 1 11 2>/dev/null; head -c 1 /tmp/kmsg >/dev/null 2>&1 && echo kmsg=ok || echo kmsg=denied
echo x > /dev/null && head -c 1 /dev/zero >/dev/null && head -c 1 /dev/urandom >/dev/null && echo defaults=ok`,
			want: []string{"mem=denied", "kmsg=denied", "defaults=ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := sh(t, tc.script)
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output %q lacks %q", lines, w)
				}
			}
			check := isolationChecks[tc.name]
			if check != nil {
				check(t, lines)
			}
		})
	}

	// No runtime fd reaches the container's init or an exec'd process: both
	// hold their stdio only. The exec'd process is a second sleeper, looked
	// at from a third exec (a shell's own listing would show the fds of
	// busybox applets it runs in-process).
	t.Run("fds", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = env.RuntimeService().ExecSync(framework.Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "7"}, Timeout: 20})
		}()
		defer func() { <-done }()
		const script = `for i in $(seq 50); do for p in /proc/[0-9]*; do
  [ "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" = "sleep 7 " ] && { printf exec=; ls $p/fd | sort -n | tr '\n' ' '; echo; break 2; }
done; sleep 0.1; done
printf init=; ls /proc/1/fd | sort -n | tr '\n' ' '; echo`
		lines := sh(t, script)
		for _, w := range []string{"init=0 1 2", "exec=0 1 2"} {
			if !slices.Contains(lines, w) {
				t.Errorf("output %q lacks %q", lines, w)
			}
		}
	})

	t.Run("runtime-sockets", func(t *testing.T) {
		if !env.Private {
			t.Skip("the runtime's socket paths are known for a private cubbyd only")
		}
		cfg := env.Daemon.Config
		socks := []string{cfg.Listen, filepath.Join(cfg.State, "admin.sock")}
		for _, s := range socks {
			if _, err := os.Stat(s); err != nil {
				t.Fatalf("socket %s on the host: %v", s, err)
			}
		}
		// Neither socket is in the container's filesystem or in its view of
		// the bound unix sockets.
		script := ""
		for _, s := range socks {
			script += "test -e '" + s + "' && echo present=" + s + "; grep -F '" + s + "' /proc/net/unix; "
		}
		script += "echo checked"
		lines := sh(t, script)
		if !slices.Equal(lines, []string{"checked"}) {
			t.Errorf("the runtime's sockets are visible from the container: %q", lines)
		}
	})
}

// isolationChecks holds the checks of TestIsolation cases whose output is
// not a fixed line.
var isolationChecks = map[string]func(*testing.T, []string){
	"host-processes": func(t *testing.T, lines []string) {
		// The sleeper, the exec'd shell and at most a child of it.
		if n, _ := lineWithPrefix(lines, "procs="); n != "2" && n != "3" {
			t.Errorf("the container sees more processes than its own: %q", lines)
		}
	},
	"masked-paths": func(t *testing.T, lines []string) {
		for _, l := range lines {
			if k, v, ok := strings.Cut(l, "="); ok && v != "0" {
				t.Errorf("masked path %s is readable from the container (%s)", k, v)
			}
		}
	},
}

// TestSharedPidInitSealed checks that in a pod sharing its pid namespace the
// pod's init, PID 1 for its containers, does not let a container write the
// runtime binary it runs from through /proc/1/exe (CVE-2019-5736), nor
// through /proc/self/exe of a process that re-executes it.
func TestSharedPidInitSealed(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig("sealed", t.TempDir())
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)
	cfg := containerConfig("sealed", reg.Ref, "sealed.log", "sleep", "4242")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	id := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, id)

	const script = `( exec 3>>/proc/1/exe ) 2>/dev/null && echo exe=writable || echo exe=sealed
( exec 3</proc/1/exe ) 2>/dev/null && echo read=ok || echo read=denied
echo done`
	lines := strings.Split(strings.TrimSpace(string(execSync(t, env, id, 0, "sh", "-c", script).GetStdout())), "\n")
	if !slices.Contains(lines, "exe=sealed") || !slices.Contains(lines, "done") {
		t.Errorf("/proc/1/exe of the shared-pid pod init: %q, want it not writable", lines)
	}
	t.Logf("from the container: %q", lines)
}
