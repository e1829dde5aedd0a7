package critest

import (
	"context"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestContainerEvents checks that every subscriber of GetContainerEvents
// sees a container's CREATED, STARTED, STOPPED and DELETED events, in order,
// with its pod's status.
func TestContainerEvents(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	pod := podConfig("events", t.TempDir())
	podID := runPod(t, env, pod)

	ctx, cancel := context.WithCancel(framework.Context(t))
	defer cancel()
	var streams []runtimeapi.RuntimeService_GetContainerEventsClient
	for i := 0; i < 2; i++ {
		s, err := env.RuntimeService().GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		if err != nil {
			t.Fatalf("GetContainerEvents: %v", err)
		}
		streams = append(streams, s)
	}
	time.Sleep(200 * time.Millisecond) // the subscriptions are in place

	rs := env.RuntimeService()
	id := createContainer(t, env, podID, pod, containerConfig("events", reg.Ref, "", "sh", "-c", "exit 0"))
	startContainer(t, env, id)
	waitContainerState(t, env, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if _, err := rs.RemoveContainer(framework.Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("remove: %v", err)
	}

	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	for i, s := range streams {
		var got []runtimeapi.ContainerEventType
		for len(got) < len(want) {
			ev, err := s.Recv()
			if err != nil {
				t.Fatalf("subscriber %d: after %v: %v", i, got, err)
			}
			if ev.GetContainerId() != id {
				continue
			}
			if ev.GetPodSandboxStatus().GetId() != podID {
				t.Errorf("subscriber %d: %s event carries pod %q, want %q", i, ev.GetContainerEventType(), ev.GetPodSandboxStatus().GetId(), podID)
			}
			if ev.GetCreatedAt() == 0 {
				t.Errorf("subscriber %d: %s event has no time", i, ev.GetContainerEventType())
			}
			got = append(got, ev.GetContainerEventType())
		}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("subscriber %d: events %v, want %v", i, got, want)
				break
			}
		}
	}
}
