package main

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestThisKernelHasWhatCubbyNeeds(t *testing.T) {
	if err := checkKernel(slog.New(slog.DiscardHandler), kernelFeatures()); err != nil {
		t.Fatalf("the test machine's kernel: %v", err)
	}
}

func TestMissingKernelFeaturesAreNamed(t *testing.T) {
	missing := errors.New("ENOSYS")
	features := []kernelFeature{
		{name: "present", since: "4.0", required: true, probe: func() error { return nil }},
		{name: "mount_setattr", since: "5.12", required: true, probe: func() error { return missing }},
		{name: "openat2", since: "5.6", required: true, probe: func() error { return missing }},
		{name: "nice to have", since: "6.1", fallback: "slower", probe: func() error { return missing }},
	}
	err := checkKernel(slog.New(slog.DiscardHandler), features)
	if err == nil {
		t.Fatal("missing required features did not refuse the start")
	}
	msg := err.Error()
	for _, want := range []string{"mount_setattr (Linux 5.12)", "openat2 (Linux 5.6)", "Linux " + minKernel + " or later"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	for _, not := range []string{"present", "nice to have"} {
		if strings.Contains(msg, not) {
			t.Errorf("error %q names %q, which is not a missing required feature", msg, not)
		}
	}
	if err := checkKernel(slog.New(slog.DiscardHandler), features[3:]); err != nil {
		t.Errorf("only an optional feature missing: %v, want a warning, no error", err)
	}
}
