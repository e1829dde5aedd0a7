package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSendBatches(t *testing.T) {
	big := strings.Repeat("x", streamBatchBytes/3)
	var items []*runtimeapi.PodSandbox
	for i := range 7 {
		items = append(items, &runtimeapi.PodSandbox{Id: string(rune('a' + i)), Annotations: map[string]string{"k": big}})
	}
	items = append(items, &runtimeapi.PodSandbox{Id: "huge", Annotations: map[string]string{"k": big + big + big + big}})
	var batches [][]*runtimeapi.PodSandbox
	err := sendBatches(context.Background(), items, func(b []*runtimeapi.PodSandbox) error {
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range batches {
		size := 0
		for _, p := range b {
			size += proto.Size(p)
			ids = append(ids, p.Id)
		}
		if len(b) > 1 && size > streamBatchBytes {
			t.Errorf("batch of %d items is %d bytes, over %d", len(b), size, streamBatchBytes)
		}
	}
	if got := strings.Join(ids, ","); got != "a,b,c,d,e,f,g,huge" {
		t.Errorf("items sent %s, want every one in order", got)
	}
	if len(batches) < 3 {
		t.Errorf("%d batches for %d large items", len(batches), len(items))
	}

	calls := 0
	if err := sendBatches(context.Background(), []*runtimeapi.PodSandbox(nil), func(b []*runtimeapi.PodSandbox) error {
		calls++
		if len(b) != 0 {
			t.Errorf("empty list sent %d items", len(b))
		}
		return nil
	}); err != nil || calls != 1 {
		t.Errorf("empty list: %d sends, %v; want one empty batch", calls, err)
	}
}
