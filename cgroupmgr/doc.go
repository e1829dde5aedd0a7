// Package cgroupmgr owns the host cgroups of pods and containers: it creates
// them (parents included), applies OCI resource limits to them, places
// processes in them, reads their usage, and tears them down, killing whatever
// is still inside.
//
// It speaks cgroup v1 (legacy and hybrid hosts: one hierarchy per mounted
// controller) and cgroup v2 (unified hosts) through
// github.com/containerd/cgroups/v3, with the cgroupfs layout kubelet uses:
// a cgroup is named by an absolute path such as
// "/kubepods/besteffort/pod123/<container id>", the same on every hierarchy.
// There is no systemd driver.
//
// On cgroup v2 processes may only live in leaf cgroups (the kernel's
// no-internal-process rule). Create enables controllers in the
// cgroup.subtree_control of every ancestor of the cgroup it makes, never in
// the cgroup itself, so a cgroup made by Create can take processes until a
// child is created under it. Callers keep processes in leaves: the pod init in
// "<pod cgroup>/cubby-pod", each container in "<pod cgroup>/<container id>".
//
// A Manager holds no per-cgroup state; every fact lives in the cgroup
// filesystem, so a restarted daemon picks up where the last one stopped.
package cgroupmgr
