package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/containerd/cgroups/v3/cgroup1"
	_ "github.com/containerd/cgroups/v3/cgroup2"
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/cyphar/filepath-securejoin"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sys/unix"
	_ "google.golang.org/grpc"
	_ "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {}
