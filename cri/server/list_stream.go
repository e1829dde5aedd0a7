package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The Stream* calls (KEP-5825, kubelet's CRIListStreaming) answer what the
// List* calls do, with the same filters, in a stream of batches: a node
// with thousands of containers never hits gRPC's message size limit.

// streamBatchBytes bounds the encoded size of one batch, well under the
// 4 MiB a default gRPC client accepts.
const streamBatchBytes = 1 << 20

// sendBatches sends items in batches of at most streamBatchBytes encoded
// bytes (a single larger item goes alone), and one empty batch when there
// are no items, so the client always gets an answer.
func sendBatches[T proto.Message](ctx context.Context, items []T, send func([]T) error) error {
	var batch []T
	size := 0
	for _, it := range items {
		n := proto.Size(it)
		if len(batch) > 0 && size+n > streamBatchBytes {
			if err := send(batch); err != nil {
				return err
			}
			batch, size = nil, 0
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = append(batch, it)
		size += n
	}
	if len(batch) > 0 || len(items) == 0 {
		return send(batch)
	}
	return nil
}

// StreamPodSandboxes is ListPodSandbox in batches.
func (s *Server) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetItems(), func(b []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b})
	})
}

// StreamContainers is ListContainers in batches.
func (s *Server) StreamContainers(r *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetContainers(), func(b []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: b})
	})
}

// StreamContainerStats is ListContainerStats in batches.
func (s *Server) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetStats(), func(b []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: b})
	})
}

// StreamPodSandboxStats is ListPodSandboxStats in batches.
func (s *Server) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetStats(), func(b []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b})
	})
}

// StreamImages is ListImages in batches.
func (s *Server) StreamImages(r *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetImages(), func(b []*runtimeapi.Image) error {
		return stream.Send(&runtimeapi.StreamImagesResponse{Images: b})
	})
}
