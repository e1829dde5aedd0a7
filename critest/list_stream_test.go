package critest

import (
	"errors"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// collect drains a server stream, flattening its batches with items.
func collect[R any, T any](t *testing.T, stream grpc.ServerStreamingClient[R], err error, items func(*R) []T) []T {
	t.Helper()
	if status.Code(err) == codes.Unimplemented {
		t.Skipf("runtime does not implement CRI list streaming: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if status.Code(err) == codes.Unimplemented {
			t.Skipf("runtime does not implement CRI list streaming: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, items(r)...)
	}
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: stream gave %v, list gave %v", what, got, want)
	}
}

// TestListStreaming checks that every Stream* call answers what its List*
// call does, with the same filters (KEP-5825).
func TestListStreaming(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	rs, is := env.RuntimeService(), env.ImageService()
	ctx := framework.Context(t)

	podA := podConfig("stream-a", t.TempDir())
	a := runPod(t, env, podA)
	runPod(t, env, podConfig("stream-b", t.TempDir()))
	ca := createContainer(t, env, a, podA, containerConfig("one", reg.Ref, "one.log", "sleep", "3600"))
	startContainer(t, env, ca)
	createContainer(t, env, a, podA, containerConfig("two", reg.Ref, "two.log", "sleep", "3600"))

	for _, f := range []*runtimeapi.PodSandboxFilter{
		nil,
		{Id: a},
		{LabelSelector: map[string]string{labelName: "stream-b"}},
		{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}},
	} {
		stream, err := rs.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: f})
		got := collect(t, stream, err, func(r *runtimeapi.StreamPodSandboxesResponse) []*runtimeapi.PodSandbox { return r.GetPodSandboxes() })
		list, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "pods "+f.String(), podIDs(got), podIDs(list.GetItems()))
	}

	for _, f := range []*runtimeapi.ContainerFilter{
		nil,
		{PodSandboxId: a},
		{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}},
		{LabelSelector: map[string]string{labelName: "two"}},
	} {
		stream, err := rs.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: f})
		got := collect(t, stream, err, func(r *runtimeapi.StreamContainersResponse) []*runtimeapi.Container { return r.GetContainers() })
		list, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "containers "+f.String(), containerIDs(got), containerIDs(list.GetContainers()))
	}

	cf := &runtimeapi.ContainerStatsFilter{PodSandboxId: a}
	cstream, err := rs.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{Filter: cf})
	cstats := collect(t, cstream, err, func(r *runtimeapi.StreamContainerStatsResponse) []*runtimeapi.ContainerStats {
		return r.GetContainerStats()
	})
	if len(cstats) != 2 {
		t.Errorf("container stats of pod %q: %d, want 2", a, len(cstats))
	}

	pstream, err := rs.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: a}})
	pstats := collect(t, pstream, err, func(r *runtimeapi.StreamPodSandboxStatsResponse) []*runtimeapi.PodSandboxStats {
		return r.GetPodSandboxStats()
	})
	if len(pstats) != 1 || pstats[0].GetAttributes().GetId() != a {
		t.Errorf("pod stats by id: %v, want pod %q only", pstats, a)
	}

	istream, err := is.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	images := collect(t, istream, err, func(r *runtimeapi.StreamImagesResponse) []*runtimeapi.Image { return r.GetImages() })
	ilist, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, i := range images {
		got = append(got, i.GetId())
	}
	for _, i := range ilist.GetImages() {
		want = append(want, i.GetId())
	}
	sameIDs(t, "images", got, want)
}
