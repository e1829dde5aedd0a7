// Package critest is cubby's end-to-end CRI conformance suite: Go tests that
// drive a container runtime only through the CRI v1 client
// (k8s.io/cri-api), so they hold for any conformant runtime.
//
// By default every test starts its own private cubbyd (built once from this
// module) with its own directories, socket, bridge, subnet and cgroup
// parent; -endpoint unix:///path runs the tests against a runtime that is
// already running instead (tests that need to restart the daemon skip).
// The busybox test image is built at test time from the host's
// busybox-static and served from an in-process registry on 127.0.0.1.
//
//	go test ./critest/ -v                                   # private cubbyd
//	go test ./critest/ -v -args -endpoint unix:///run/cubby/cubby.sock
//
// The tests need root.
package critest
