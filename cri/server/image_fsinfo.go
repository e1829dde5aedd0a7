package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/rootfs"
)

// ImageFsInfo reports the disk use of the image store (image_filesystems)
// and of the containers' writable layers (container_filesystems), so that
// kubelet's image and container garbage collection can work. The store
// caches the measurement briefly; kubelet calls this often.
func (s *Server) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	u, err := s.images.Usage()
	if err != nil {
		return nil, fmt.Errorf("image fs info: %w", err)
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{criUsage(u.Images)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{criUsage(u.Containers)},
	}, nil
}

func criUsage(u rootfs.FilesystemUsage) *runtimeapi.FilesystemUsage {
	return &runtimeapi.FilesystemUsage{
		Timestamp:  u.Time.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Path},
		UsedBytes:  &runtimeapi.UInt64Value{Value: u.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: u.Inodes},
	}
}
