// Package podinit is cubby-pod, the per-pod init, as a library: the one
// process per pod sandbox that holds the pod's namespaces, starts and reaps
// its containers and writes their CRI logs.
//
// It runs in the pod's own net, ipc, uts and pid namespaces (the pod init
// keeper, its parent, cloned it into them for cubbyd; a host network, ipc or pid pod keeps the node's of that kind)
// and in the host mount namespace. It sets the pod's hostname and sysctls
// there before it reports ready. It is PID 1 of the pod's pid namespace, so
// when it dies the kernel kills every container of the pod: nothing
// outlives the pod init. In the node's pid namespace it is a child
// subreaper instead, and cubbyd kills the containers through their cgroups
// (the keeper kills and reaps those its death left behind, also while
// cubbyd is down).
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
