package main

import (
	"bytes"
	"regexp"
	"testing"
)

func TestClientVersion(t *testing.T) {
	var b bytes.Buffer
	if err := printClientVersion(&b); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^cubby \S+ \(commit \S+, go\S+\)\n$`).Match(b.Bytes()) {
		t.Errorf("cubby version --client = %q", b.String())
	}
}
