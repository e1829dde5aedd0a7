// Package server implements the CRI RuntimeService and ImageService of
// cubbyd: one file per RPC, each validating the request, mapping CRI types to
// an OCI spec and our domain types, and calling the layers below (sandbox,
// rootfs, netcni, cgroupmgr). Errors are mapped to gRPC codes in exactly one
// place, the interceptor in instrument.go; handlers return wrapped sentinel
// errors. The same interceptor records each call's Prometheus metrics
// (metrics.go); StateCollector counts pods and containers by state; the
// steps of pod starts and stops are timed (steps.go) into histograms too. A
// verbose Status (crictl info, status_info.go) reports the configuration in
// effect as JSON entries.
//
// Every pod and container has an in-memory object whose status is guarded by
// its own lock, changed only through update (which persists the record in
// the same step) and copied on read. No lock is held across CNI calls, mounts
// or process starts.
package server
