// Package framework is the harness of cubby's end-to-end CRI suite.
//
// It owns everything the tests need around the runtime under test, and
// nothing inside it: command-line options (-endpoint, -cubbyd), building the
// cubby binaries once per test binary, starting a private cubbyd per test
// with its own root, state, socket, bridge, subnet and cgroup parent,
// restarting it with SIGKILL, connecting the CRI clients, and tearing all of
// it down again — including reporting (and undoing) what a misbehaving
// runtime leaked: mounts under its directories, processes in its cgroups,
// its bridge. Env.Leftovers lists everything of a private daemon's pods
// still on the host (state files, mounts, cgroups, veths, IPs, processes,
// zombies) for tests that check nothing is left. A private daemon can run
// with extra environment (WithEnv: CUBBY_TEST_FAULT) and be started again
// after a fault point killed it (Daemon.WaitExit, Env.StartAgain). Like a
// node's supervisor, the suite is the child subreaper of the daemons it
// starts and reaps the pod inits their deaths orphan (ReapOrphans).
//
// It also holds the small host-side probes the tests use to check a
// runtime's work from outside: /proc/self/mountinfo, /proc/<pid>, cgroup
// hierarchies, CRI log files and the verbose status info.
//
// The tests drive the runtime only through the CRI client
// (k8s.io/cri-api runtime v1), so they hold for any conformant runtime.
package framework
