package critest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// endMarker is the last line every runScript script prints.
const endMarker = "=end="

// runScript runs script with sh -c in a new container of pod podID built
// from cfg (its command is replaced), waits for it to exit and returns its
// exit status and its stdout and stderr lines, without the stream names.
// The check happens inside the container, through its own output, so it
// needs no exec and works against any runtime.
func runScript(t *testing.T, env *framework.Env, podID string, pod *runtimeapi.PodSandboxConfig, logDir string, cfg *runtimeapi.ContainerConfig, script string) (*runtimeapi.ContainerStatus, []string) {
	t.Helper()
	cfg.Command = []string{"sh", "-c", script + "\necho " + endMarker}
	cfg.Args = nil
	cfg.LogPath = cfg.GetMetadata().GetName() + ".log"
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	st := waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	// A script that died early never prints the marker: then take the
	// log as it is.
	entries := readLogUntil(t, filepath.Join(logDir, cfg.LogPath), func(e []framework.LogEntry) bool {
		return st.GetExitCode() != 0 || slices.ContainsFunc(e, func(l framework.LogEntry) bool { return l.Content == endMarker })
	})
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Content != endMarker {
			lines = append(lines, e.Content)
		}
	}
	return st, lines
}

// lineWithPrefix returns the value of the first line starting with prefix,
// trimmed, and whether there was one.
func lineWithPrefix(lines []string, prefix string) (string, bool) {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
