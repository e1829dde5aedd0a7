package critest

import (
	"fmt"
	"net"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestPodSandboxStats checks a running pod's stats: CPU, memory and
// processes from its cgroup, traffic on its interface after the node talked
// to it, and its container's stats inside; and the list call's filters.
func TestPodSandboxStats(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	rs := env.RuntimeService()

	pod := podConfig("stats", t.TempDir())
	podID := runPod(t, env, pod)
	other := runPod(t, env, podConfig("stats-other", t.TempDir()))
	st, _ := podStatus(t, env, podID, false)
	greeting := "stats-" + framework.RandomHex(4)
	cfg := containerConfig("server", reg.Ref, "server.log", "sh", "-c",
		fmt.Sprintf("while true; do echo %s | nc -l -p 8080; done", greeting))
	cid := createContainer(t, env, podID, pod, cfg)
	startContainer(t, env, cid)
	if got := readGreeting(t, net.JoinHostPort(st.GetNetwork().GetIp(), "8080")); got != greeting {
		t.Fatalf("pod said %q, want %q", got, greeting)
	}

	resp, err := rs.PodSandboxStats(framework.Context(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetStats()
	if ps.GetAttributes().GetId() != podID || ps.GetAttributes().GetMetadata().GetName() != pod.GetMetadata().GetName() {
		t.Errorf("attributes %v", ps.GetAttributes())
	}
	l := ps.GetLinux()
	if l.GetCpu().GetTimestamp() == 0 || l.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("cpu %v, want a timestamp and some usage", l.GetCpu())
	}
	if l.GetMemory().GetWorkingSetBytes().GetValue() == 0 || l.GetMemory().GetUsageBytes().GetValue() == 0 {
		t.Errorf("memory %v, want some use", l.GetMemory())
	}
	if n := l.GetProcess().GetProcessCount().GetValue(); n < 2 {
		t.Errorf("process count %d, want at least the container's shell and nc", n)
	}
	eth := l.GetNetwork().GetDefaultInterface()
	if eth.GetName() == "" || eth.GetRxBytes().GetValue() == 0 || eth.GetTxBytes().GetValue() == 0 {
		t.Errorf("default interface %v, want traffic both ways", eth)
	}
	found := false
	for _, c := range l.GetContainers() {
		if c.GetAttributes().GetId() == cid {
			found = true
			if c.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
				t.Errorf("container stats %v, want memory use", c)
			}
		}
	}
	if !found {
		t.Errorf("container %q missing from the pod's stats %v", cid, l.GetContainers())
	}

	list, err := rs.ListPodSandboxStats(framework.Context(t), &runtimeapi.ListPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{Id: podID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetStats()) != 1 || list.GetStats()[0].GetAttributes().GetId() != podID {
		t.Errorf("list by id: %d stats, want only pod %q", len(list.GetStats()), podID)
	}
	list, err = rs.ListPodSandboxStats(framework.Context(t), &runtimeapi.ListPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{labelName: "stats-other"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetStats()) != 1 || list.GetStats()[0].GetAttributes().GetId() != other {
		t.Errorf("list by label: %v, want only pod %q", list.GetStats(), other)
	}
	if _, err := rs.PodSandboxStats(framework.Context(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "nonexistent"}); err == nil {
		t.Error("stats of an unknown pod succeeded")
	}
}
