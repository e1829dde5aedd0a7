package critest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// readGreeting dials addr until it answers with a line (the server in the
// container may still be starting) and returns the line.
func readGreeting(t *testing.T, addr string) string {
	t.Helper()
	var line string
	var lastErr error
	err := framework.Poll(framework.Context(t), 100*time.Millisecond, func() (bool, error) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			lastErr = err
			return false, nil
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		line, lastErr = bufio.NewReader(conn).ReadString('\n')
		return lastErr == nil, nil
	})
	if err != nil {
		t.Errorf("no greeting from %s: %v (last: %v)", addr, err, lastErr)
	}
	return strings.TrimSpace(line)
}

// TestPodPortMappings runs a server in a pod with a host port and reaches
// it from the node: on 127.0.0.1:<hostPort> and on the pod IP at the
// container port.
func TestPodPortMappings(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)

	hostPort := freePort(t)
	pod := podConfig("ports", t.TempDir())
	pod.PortMappings = []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 9090}, // container port only
	}
	podID := runPod(t, env, pod)
	st, _ := podStatus(t, env, podID, false)
	podIP := st.GetNetwork().GetIp()
	greeting := "hello-" + framework.RandomHex(4)
	cfg := containerConfig("server", reg.Ref, "server.log", "sh", "-c",
		fmt.Sprintf("while true; do echo %s | nc -l -p 8080; done", greeting))
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)

	if got := readGreeting(t, net.JoinHostPort(podIP, "8080")); got != greeting {
		t.Errorf("pod IP %s:8080 said %q, want %q", podIP, got, greeting)
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(hostPort)))
	if got := readGreeting(t, local); got != greeting {
		t.Errorf("host port %s said %q, want %q", local, got, greeting)
	}

	// Once the pod is gone, the host port is free again.
	removePod(t, env, podID)
	if conn, err := net.DialTimeout("tcp", local, time.Second); err == nil {
		conn.Close()
		t.Errorf("host port %s still answers after the pod was removed", local)
	}
}
