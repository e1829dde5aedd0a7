// Package containerinit owns the container init stage: the short-lived
// process that becomes a container.
//
// Two halves live here. [Start] runs in the parent, cubby-pod (the per-pod
// init, inside the pod's net/ipc/uts namespaces and the node's pid
// namespace): it re-executes the sealed copy of its binary (sealedexe)
// with CLONE_NEWNS and, for a pid namespace of the container's own,
// CLONE_NEWPID (a container sharing the pod's is forked from a thread that
// joined it), places the child in its cgroups, hands it the OCI runtime
// spec over a socketpair and waits until the child has either execve'd the
// user command or reported why it could not.
//
// [Main] runs in that child, which is PID 1 of the container's new pid
// namespace (or a process of the pod's) and alone in its new mount
// namespace. It builds the container's
// view of the filesystem (mounts, devices, pivot_root, masked and read-only
// paths, sysctls), drops privileges (rlimits, oom score, no_new_privs, user,
// capabilities) and finally execve's the user command, so after a successful
// start the container's process is this very child. A container with a
// terminal gets one of its own devpts, allocated here; the master goes back
// to the parent.
//
// Paths inside the rootfs are hostile: the image and sibling containers
// sharing a volume control them. The init stage resolves each one once,
// inside the root (openat2 RESOLVE_IN_ROOT, no magic links), into a file
// descriptor and acts on that descriptor (mountfd.go): bind sources are
// opened without symlinks and checked against the identity cubbyd pinned
// at create, masks are clones of a verified /dev/null, procfs is written
// through a handle checked to be procfs (procfs.go), and the working
// directory is made inside the root before pivot_root.
//
// [Exec] and [ExecMain] are the same pair for a process started in a
// running container: the child is forked from a thread that first joined
// every namespace of the container (the mount namespace before the pid
// namespace), so it is born with the container's root and no host
// descriptor or working directory, runs the sealed binary by its relative
// name from the sealed directory, and then takes the very process steps
// of the init stage (processSteps: rlimits, no_new_privs, cwd, fds,
// capabilities, user, seccomp, execve).
//
// Not yet so for the init stage of a container that shares the pod's pid
// namespace (or targets another container's): it is visible to the other
// containers there from its fork until its pivot_root with a copy of the
// host's mount table as its root (its exe and working directory are the
// sealed copy's).
//
// The package is linked into cubby-pod, whose memory is the per-pod overhead
// of the runtime, so it depends only on the standard library, x/sys/unix,
// the OCI runtime-spec types and filepath-securejoin.
package containerinit
