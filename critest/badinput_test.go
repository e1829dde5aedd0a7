package critest

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestBadInput checks the error contract: an unknown id is NotFound, stop
// and remove of something that is gone succeed, a malformed request is
// InvalidArgument.
func TestBadInput(t *testing.T) {
	env := suite.NewEnv(t)
	rs := env.RuntimeService()
	const unknown = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	tests := []struct {
		name string
		call func(context.Context) error
		want codes.Code
	}{
		{
			name: "CreateContainer in unknown pod",
			call: func(ctx context.Context) error {
				pod := podConfig("bad-input", t.TempDir())
				_, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
					PodSandboxId:  unknown,
					Config:        containerConfig("orphan", "busybox", "orphan.log", "true"),
					SandboxConfig: pod,
				})
				return err
			},
			want: codes.NotFound,
		},
		{
			name: "ContainerStatus of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: unknown})
				return err
			},
			want: codes.NotFound,
		},
		{
			name: "PodSandboxStatus of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: unknown})
				return err
			},
			want: codes.NotFound,
		},
		{
			name: "StopContainer of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: unknown})
				return err
			},
			want: codes.OK,
		},
		{
			name: "RemoveContainer of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: unknown})
				return err
			},
			want: codes.OK,
		},
		{
			name: "StopPodSandbox of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown})
				return err
			},
			want: codes.OK,
		},
		{
			name: "RemovePodSandbox of unknown id",
			call: func(ctx context.Context) error {
				_, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown})
				return err
			},
			want: codes.OK,
		},
		{
			name: "RunPodSandbox without metadata",
			call: func(ctx context.Context) error {
				cfg := podConfig("no-metadata", t.TempDir())
				cfg.Metadata = nil
				resp, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
				if err == nil {
					// Wrongly accepted: do not leak the pod.
					t.Cleanup(func() { removePod(t, env, resp.GetPodSandboxId()) })
				}
				return err
			},
			want: codes.InvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(framework.Context(t))
			if got := status.Code(err); got != tt.want {
				t.Errorf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}
