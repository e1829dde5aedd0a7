// Package podinit is cubby-pod, the per-pod init, as a library: the one
// process per pod sandbox that holds the pod's namespaces, starts and reaps
// its containers and writes their CRI logs.
//
// It runs in the pod's own net, ipc and uts namespaces (the pod init
// keeper, its parent, cloned it into them for cubbyd; a host network or ipc
// pod keeps the node's of that kind), in the host mount namespace, and in
// the node's pid namespace. It sets the pod's hostname and sysctls there
// before it reports ready.
//
// It is never in its pod's pid namespace, where every container sharing it
// could reach what the pod init holds of the node through /proc/<pid>. A
// pod with a pid namespace of its own gets it from pid1 (pid1.go): a fork
// of the pod init with CLONE_NEWPID|CLONE_NEWNS that holds nothing (empty
// read-only root, no descriptor, no capability, no memory of the pod init),
// reaps orphans and dies with the pod init, taking the whole pod pid
// namespace with it. The pod init pins that namespace, forks the containers
// that share it into it from threads that joined it, and stays their
// parent; a container with a pid namespace of its own it forks directly
// (its namespace is a sibling of the pod's: the kernel makes a new one only
// below the forking process's own). It is a child subreaper, so in a
// hostPID pod what its containers leave behind comes to it; what it leaves
// behind when it dies goes to the keeper, which kills it.
//
//	cubby-pod (node pid ns) ── pid1 (PID 1 of the pod pid ns, reaps orphans)
//	   ├─ containers sharing the pod pid ns  (forked from a thread in it)
//	   ├─ containers with their own pid ns   (forked directly)
//	   └─ exec stages                         (forked into their container's pid ns)
//
// For every container with a pid namespace of its own it bind-mounts that
// namespace into the container's bundle (<bundle>/pidns), so that another
// container can be forked into it (pid mode TARGET, kubectl debug --target).
//
//	cubbyd ──ctl.sock──▶ podinit.Server
//	                        │ start: containerinit.Start (re-exec in new mnt+pid ns)
//	                        │ reaper: wait4(-1) on SIGCHLD → exit.json
//	                        │ log copiers: container stdout/stderr pipes → CRI log (+ attached clients)
//	                        │ exec: containerinit.Exec (fork from a thread that joined every
//	                        │       namespace of the container), stdio fds passed to cubbyd
//	                        └ attach: output pipes and the held stdin/terminal passed to cubbyd
//
// The pod init runs from the keeper's sealed copy of cubby-pod and starts
// the init and exec stages from it too (sealedexe): it takes the copy's
// directory, its working directory at start, before anything else.
//
// cubbyd is not its parent: it can die and come back while containers run,
// their pipes end here.
//
// Everything linked into cubby-pod is per-pod memory, so this package keeps
// to the standard library, x/sys and the OCI spec types.
package podinit
