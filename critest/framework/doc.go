// Package framework is the harness of cubby's end-to-end CRI suite.
//
// It owns everything the tests need around the runtime under test, and
// nothing inside it: command-line options (-endpoint, -cubbyd), building the
// cubby binaries once per test binary, starting a private cubbyd per test
// with its own root, state, socket, bridge, subnet and cgroup parent,
// restarting it with SIGKILL, connecting the CRI clients, and tearing all of
// it down again — including reporting (and undoing) what a misbehaving
// runtime leaked: mounts under its directories, processes in its cgroups,
// its bridge.
//
// It also holds the small host-side probes the tests use to check a
// runtime's work from outside: /proc/self/mountinfo, /proc/<pid>, cgroup
// hierarchies, CRI log files and the verbose status info.
//
// The tests drive the runtime only through the CRI client
// (k8s.io/cri-api runtime v1), so they hold for any conformant runtime.
package framework
