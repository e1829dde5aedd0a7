package server

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
)

func TestPodNamesOfDifferentTuplesDiffer(t *testing.T) {
	tuples := []*runtimeapi.PodSandboxMetadata{
		{Name: "a_b", Namespace: "c", Uid: "u", Attempt: 1},
		{Name: "a", Namespace: "b_c", Uid: "u", Attempt: 1},
		{Name: "a%5Fb", Namespace: "c", Uid: "u", Attempt: 1},
		{Name: "a", Namespace: "b", Uid: "c_u", Attempt: 1},
		{Name: "a", Namespace: "b", Uid: "c", Attempt: 1},
	}
	seen := map[string]*runtimeapi.PodSandboxMetadata{}
	for _, m := range tuples {
		k := podName(m)
		if other, dup := seen[k]; dup {
			t.Errorf("pods %v and %v share the key %q", other, m, k)
		}
		seen[k] = m
	}
	if got := podName(&runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "1234", Attempt: 2}); got != "web_default_1234_2" {
		t.Errorf("plain names: key %q, want web_default_1234_2", got)
	}
}

func TestCgroupArgumentErrorsAreInvalidArgument(t *testing.T) {
	for _, err := range []error{cgroupmgr.ErrInvalidArgument, cgroupmgr.ErrInvalidPath} {
		wrapped := fmt.Errorf("update container %q: %w", "c1", err)
		if got := status.Code(toStatus(wrapped)); got != codes.InvalidArgument {
			t.Errorf("%v: code %v, want InvalidArgument", err, got)
		}
	}
	if got := status.Code(toStatus(errors.New("disk on fire"))); got != codes.Unknown {
		t.Errorf("an unclassified error: code %v, want Unknown", got)
	}
}
