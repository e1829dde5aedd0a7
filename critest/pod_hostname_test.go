package critest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cubby/critest/framework"
)

// TestPodWithoutHostnameKeepsNodeHostname checks that a pod whose config
// sets no hostname (critest's and many kubelet pods') runs with the node's
// hostname in its own UTS namespace, whatever the length of its name, and
// that /etc/hostname and $HOSTNAME say the same.
func TestPodWithoutHostnameKeepsNodeHostname(t *testing.T) {
	node, err := os.Hostname()
	if err != nil {
		t.Fatalf("node hostname: %v", err)
	}
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	logDir := t.TempDir()
	// Longer than the 64 bytes a hostname may have: the name is not used.
	pod := podConfig("create-PodSandbox-for-container-with-a-very-long-name-"+strings.Repeat("x", 40), logDir)
	podID := runPod(t, env, pod)
	defer removePod(t, env, podID)

	script := `hostname; cat /etc/hostname; echo "$HOSTNAME"`
	cid := createContainer(t, env, podID, pod, containerConfig("hostname", reg.Ref, "hostname.log", "sh", "-c", script))
	startContainer(t, env, cid)
	entries := readLogUntil(t, filepath.Join(logDir, "hostname.log"), func(e []framework.LogEntry) bool { return len(e) >= 3 })
	got := contents(entries)
	want := []string{"stdout " + node, "stdout " + node, "stdout " + node}
	if !slices.Equal(got, want) {
		t.Errorf("hostname, /etc/hostname, $HOSTNAME in a pod without hostname = %q, want the node's %q", got, node)
	}
}
