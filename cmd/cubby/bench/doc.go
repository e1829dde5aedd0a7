// Package bench is the benchmark harness behind `cubby bench`. It drives any
// CRI runtime through the CRI client only — no cubby internals — so the same
// run can be compared across runtimes: pod start latency per call and end to
// end, burst throughput, the idle memory and CPU of the runtime's own
// processes per pod, ExecSync latency and List latency.
//
// The package owns the bench pods (it labels each with the run id and removes
// every one it made, also on interruption) and reads /proc of the host to
// measure the runtime's processes, so the bench must run as root on the same
// host as the runtime.
package bench
