package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestSharedPidRuntimeProcessesHoldNothing attacks, from a hostile
// container in a pod that shares its pid namespace, every process the
// container can see that is not a container process (the pod's PID 1
// above all, the runtime's or a pause process) through /proc/<pid>:
//
//   - proc-root-host-file: read a file the test put on the node through
//     /proc/<pid>/root;
//   - proc-cwd-socket: find a unix socket (the pod's control socket) in
//     /proc/<pid>/cwd;
//   - proc-mountinfo-host-mounts: find a mount the test made on the node
//     (before the pod started) in /proc/<pid>/mountinfo;
//   - proc-exe-write: open /proc/<pid>/exe for writing;
//   - proc-fd-host-files: find a descriptor of anything but /dev/null or a
//     pipe in /proc/<pid>/fd.
//
// Each runs from a container with CAP_SYS_PTRACE (which opens
// /proc/<pid>/{root,cwd,fd,exe} of any process of the pod) and from one
// with the default capabilities.
func TestSharedPidRuntimeProcessesHoldNothing(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	// On the node: a marker file, and a mount made before the pod starts
	// (a process that copied the node's mount table then would list it).
	hostDir := t.TempDir()
	marker := filepath.Join(hostDir, "node-marker")
	secret := "node-secret-" + framework.RandomHex(8)
	if err := os.WriteFile(marker, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(hostDir, "node-mount-"+framework.RandomHex(8))
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4k"); err != nil {
		t.Skipf("cannot make a node mount for the test: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mnt, err)
		}
	})

	pod := podConfig("pid1-attack", t.TempDir())
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runPod(t, env, pod)
	// A second container, so that the pod has more than the attacker.
	victim := containerConfig("victim", reg.Ref, "victim.log", "sleep", "4243")
	victim.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	victimID := createContainer(t, env, podID, pod, victim)
	startContainer(t, env, victimID)

	for _, attacker := range []struct {
		name string
		caps *runtimeapi.Capability
	}{
		{name: "ptrace", caps: &runtimeapi.Capability{AddCapabilities: []string{"SYS_PTRACE"}}},
		{name: "default"},
	} {
		t.Run(attacker.name, func(t *testing.T) {
			cfg := containerConfig("attacker-"+attacker.name, reg.Ref, "attacker-"+attacker.name+".log", "sleep", "4242")
			cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			cfg.Linux.SecurityContext.Capabilities = attacker.caps
			id := createContainer(t, env, podID, pod, cfg)
			startContainer(t, env, id)
			containerPids := []int{podPidOf(t, env, id), podPidOf(t, env, victimID)}
			findings, seen, reached := attackProcPids(t, env, id, containerPids, marker, filepath.Base(mnt))
			if !slices.Contains(seen, 1) {
				t.Fatalf("the attacker saw no PID 1 to attack (saw %v): not a shared pid namespace?", seen)
			}
			// With CAP_SYS_PTRACE the attack gets in: what it finds is
			// what the process holds, not a permission error.
			if attacker.caps != nil && !slices.Contains(reached, 1) {
				t.Errorf("the CAP_SYS_PTRACE attacker could not open /proc/1/root (reached %v)", reached)
			}
			t.Logf("attacked pids %v (container pids %v)", seen, containerPids)
			for _, attack := range []string{"proc-root-host-file", "proc-cwd-socket", "proc-mountinfo-host-mounts", "proc-exe-write", "proc-fd-host-files"} {
				t.Run(attack, func(t *testing.T) {
					for _, f := range findings[attack] {
						t.Errorf("from a %s container: %s", attacker.name, f)
					}
				})
			}
		})
	}
}

// attackScript runs in the attacker with $SKIP (the pids not to attack),
// $MARKER and $MOUNT set; every line it prints is "<attack> <pid> <what>"
// or "seen <pid>" and "reached <pid>" (its /proc/<pid>/root opened).
const attackScript = `
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  case " $SKIP $$ " in *" $p "*) continue;; esac
  # Our own subshells and commands are container processes too.
  pp=$(sed -n 's/^PPid:[[:space:]]*//p' $d/status 2>/dev/null)
  [ -z "$pp" ] && continue
  [ "$pp" = "$$" ] && continue
  echo "seen $p"
  readlink "$d/root" >/dev/null 2>&1 && echo "reached $p"
  c=$(cat "$d/root$MARKER" 2>/dev/null) && echo "proc-root-host-file $p read $c"
  for s in "$d"/cwd/* "$d"/cwd/.[!.]*; do
    [ -S "$s" ] && echo "proc-cwd-socket $p ${s#$d/cwd/}"
  done
  grep -F "$MOUNT" "$d/mountinfo" 2>/dev/null | sed "s|^|proc-mountinfo-host-mounts $p |"
  ( exec 3>>"$d/exe" ) 2>/dev/null && echo "proc-exe-write $p opened for writing"
  for f in "$d"/fd/*; do
    l=$(readlink "$f" 2>/dev/null) || continue
    case "$l" in /dev/null|pipe:*) ;; *) echo "proc-fd-host-files $p fd ${f#$d/fd/} -> $l";; esac
  done
done
echo done`

// attackProcPids runs attackScript in container id, sparing pids (and its
// own processes), and returns its findings by attack, the pids it
// attacked and those whose /proc/<pid>/root it could open.
func attackProcPids(t *testing.T, env *framework.Env, id string, pids []int, marker, mount string) (findings map[string][]string, seen, reached []int) {
	t.Helper()
	skip := make([]string, len(pids))
	for i, p := range pids {
		skip[i] = strconv.Itoa(p)
	}
	script := "SKIP='" + strings.Join(skip, " ") + "' MARKER='" + marker + "' MOUNT='" + mount + "'\n" + attackScript
	resp := execSync(t, env, id, 60, "sh", "-c", script)
	out := strings.TrimSpace(string(resp.GetStdout()))
	if !strings.HasSuffix(out, "done") {
		t.Fatalf("attack script did not finish (exit %d): %s%s", resp.GetExitCode(), out, resp.GetStderr())
	}
	findings = map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "seen", "reached":
			p, err := strconv.Atoi(rest)
			if err != nil {
				continue
			}
			if kind == "seen" {
				seen = append(seen, p)
			} else {
				reached = append(reached, p)
			}
		case "done":
		default:
			findings[kind] = append(findings[kind], "pid "+rest)
		}
	}
	return findings, seen, reached
}

// podPidOf is the pid of container id's process in the pod's pid
// namespace (the last field of its NSpid line on the node).
func podPidOf(t *testing.T, env *framework.Env, id string) int {
	t.Helper()
	_, info := containerStatus(t, env, id, true)
	host := verboseInfo(t, "container "+id, info).Pid
	nspid, err := framework.StatusField(host, "NSpid")
	if err != nil {
		t.Fatalf("container %q: %v", id, err)
	}
	f := strings.Fields(nspid)
	p, err := strconv.Atoi(f[len(f)-1])
	if err != nil || len(f) < 2 {
		t.Fatalf("container %q (pid %d): NSpid %q: not in a pid namespace of its own", id, host, nspid)
	}
	return p
}
