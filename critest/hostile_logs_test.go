package critest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestContainerSymlinksItsLogToHostFile is a hostile pod that can write
// into its own log directory (kubelet's log dir mounted into it as a
// hostPath): it plants symlinks at log paths, pointing at host files and
// directories, then gets its log reopened (ReopenContainerLog after a
// rotation) and a container started whose log path is such a symlink.
// The host files must never be written. A runtime may refuse (the reopen
// or the start fails) or replace the symlink with a file of its own.
func TestContainerSymlinksItsLogToHostFile(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	pullImage(t, env, reg.Ref)

	logDir := t.TempDir()
	hostDir := t.TempDir()
	victim := filepath.Join(hostDir, "victim")
	const untouched = "host file, not a log\n"
	if err := os.WriteFile(victim, []byte(untouched), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := podConfig("log-symlink", logDir)
	podID := runPod(t, env, pod)

	cfg := containerConfig("attacker", reg.Ref, "attacker.log",
		"sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done")
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: logDir, ContainerPath: "/logs"}}
	attacker := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, attacker)
	logPath := filepath.Join(logDir, "attacker.log")
	readLogUntil(t, logPath, func(e []framework.LogEntry) bool { return len(e) >= 2 })

	// checkVictim fails t if anything reached the host files.
	checkVictim := func(t *testing.T) {
		t.Helper()
		got, err := os.ReadFile(victim)
		if err != nil {
			t.Fatalf("host file: %v", err)
		}
		if !bytes.Equal(got, []byte(untouched)) {
			t.Errorf("host file %s was written through the planted symlink: %q", victim, got)
		}
		for _, name := range []string{"0.log", "next.log"} {
			if _, err := os.Lstat(filepath.Join(hostDir, name)); err == nil {
				t.Errorf("a log file %s was created in the host directory the planted symlink points at", name)
			}
		}
	}
	// notSymlink fails t unless the log path is not a symlink any more
	// (a runtime that replaced the planted link).
	notSymlink := func(t *testing.T, path string) {
		t.Helper()
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			t.Errorf("the runtime took the log path %s without refusing, yet it is still a symlink (%v)", path, err)
		}
	}

	t.Run("reopen-after-rotation", func(t *testing.T) {
		// The container rotates its own log and plants a symlink where
		// the new file is to be, then the runtime is asked to reopen.
		execSync(t, env, attacker, 10, "sh", "-c", "mv /logs/attacker.log /logs/attacker.log.1 && ln -s "+victim+" /logs/attacker.log")
		_, err := rs.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: attacker})
		if err == nil {
			notSymlink(t, logPath)
		} else {
			t.Logf("ReopenContainerLog refused: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // the container keeps writing
		checkVictim(t)
	})

	t.Run("start-with-symlinked-log", func(t *testing.T) {
		// The next container of the pod (a restart) has a log path the
		// attacker has already planted: a symlink to the host file, and
		// a symlinked directory leading to a host directory.
		execSync(t, env, attacker, 10, "sh", "-c", "ln -s "+victim+" /logs/next.log && ln -s "+hostDir+" /logs/nextdir")
		for i, lp := range []string{"next.log", "nextdir/0.log"} {
			ccfg := containerConfig("next-"+itoa(i), reg.Ref, lp, "sh", "-c", "echo written-to-the-host")
			id := createContainer(t, env, podID, pod, ccfg)
			_, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
			if err == nil {
				waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
				notSymlink(t, filepath.Join(logDir, strings.Split(lp, "/")[0]))
			} else {
				t.Logf("StartContainer with log path %s refused: %v", lp, err)
			}
		}
		checkVictim(t)
	})
}
