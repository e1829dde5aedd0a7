package critest

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// rawCodec sends and receives messages as the bytes given: a request the
// generated client would refuse to encode (invalid UTF-8 in a string
// field) reaches the runtime as is.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T is not []byte", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T is not *[]byte", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestInvalidUTF8 sends a RunPodSandbox whose pod name is not UTF-8, which
// protobuf forbids in a string field: it fails with a gRPC error, the
// runtime keeps serving, and no pod is made.
func TestInvalidUTF8(t *testing.T) {
	env := suite.NewEnv(t)
	if !env.Private {
		t.Skip("dials the private cubbyd's socket directly")
	}
	conn, err := grpc.NewClient("unix://"+env.Daemon.Config.Listen,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var meta []byte
	meta = protowire.AppendTag(meta, 1, protowire.BytesType) // name
	meta = protowire.AppendBytes(meta, []byte("bad\xff\xfename"))
	meta = protowire.AppendTag(meta, 2, protowire.BytesType) // uid
	meta = protowire.AppendBytes(meta, []byte(framework.RandomHex(8)))
	meta = protowire.AppendTag(meta, 3, protowire.BytesType) // namespace
	meta = protowire.AppendBytes(meta, []byte("critest"))
	var cfg []byte
	cfg = protowire.AppendTag(cfg, 1, protowire.BytesType) // metadata
	cfg = protowire.AppendBytes(cfg, meta)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // config
	req = protowire.AppendBytes(req, cfg)

	var resp []byte
	err = conn.Invoke(framework.Context(t), "/runtime.v1.RuntimeService/RunPodSandbox", req, &resp)
	if err == nil {
		t.Errorf("RunPodSandbox with a non-UTF-8 name succeeded (%x)", resp)
	} else if status.Code(err) == codes.Unknown {
		t.Errorf("RunPodSandbox with a non-UTF-8 name: %v, want a specific code", err)
	}
	t.Logf("non-UTF-8 pod name: %v", err)
	pods, err := env.RuntimeService().ListPodSandbox(framework.Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatalf("the runtime stopped serving: %v", err)
	}
	if n := len(pods.GetItems()); n != 0 {
		t.Errorf("%d pods after a refused RunPodSandbox", n)
	}
}
