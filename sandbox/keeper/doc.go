// Package keeper is the node's pod init keeper: one small long-lived
// process (`cubby-pod keeper`) that is the parent of every pod init, so that
// a pod init never becomes an orphan when cubbyd dies.
//
// Why: the parent of a process is the only one that can reap it. Were pod
// inits cubbyd's children, a cubbyd restart would hand them to PID 1 (or the
// nearest child subreaper), and a restarted cubbyd could never adopt them:
// on a node whose PID 1 does not reap, every pod init that ended after a
// restart would stay a zombie. The keeper outlives cubbyd restarts, so it
// reaps every pod init, before and after them.
//
//	cubbyd ──(keeper.sock: spawn)──▶ cubby-pod keeper   child subreaper
//	                                   └─ cubby-pod      one per pod
//
// Whatever else comes to the keeper as a subreaper can only be what a dead
// pod init left behind (its containers, and the PID 1 of its pod's pid
// namespace): the keeper kills it, so nothing runs on unmonitored while
// cubbyd is down. The kernel kills what is in the pod's pid namespace when
// its PID 1 dies with the pod init; containers with a pid namespace of
// their own, and those of a pod in the node's, have only the keeper.
//
// Pod inits are born in the pod's new net, ipc and uts namespaces
// (Request.CloneFlags), never in a new pid namespace: the pod init stays in
// the node's and makes the pod's itself (see sandbox/podinit).
//
// Protocol, on the unix socket SocketName in cubbyd's state directory; one
// call per connection, a JSON line each way:
//
//	spawn: Request{Args, CloneFlags, CgroupProcsFiles} with the child's
//	       stdio and extra descriptors (SCM_RIGHTS) ─▶ Response{Pid} with a
//	       pidfd of the child. The keeper forks it in a new session, joins
//	       it to its cgroups before it can be reaped (so the pid cannot have
//	       been reused), and reaps it when it ends.
//	hold:  Request{} ─▶ Response{Pid: keeper's}; the connection then stays
//	       open while cubbyd runs.
//
// The keeper runs until it has nothing to keep: no child, no cubbyd
// holding it, and a living parent to reap it (a keeper whose parent is
// PID 1 stays, idle, for the next cubbyd rather than risk becoming a zombie
// of an init that does not reap). cubbyd starts it on first need, from the
// cubby-pod binary, and waits for it at shutdown when it is idle.
//
// At start the keeper seals a read-only copy of its binary (sealedexe) and
// starts every pod init from it, in its directory: no pod init's
// /proc/<pid>/exe is the host's cubby-pod, and the pod inits of the node
// share the copy's page cache (and hand it on to the init and exec stages).
//
// It keeps no state of its own: what cubbyd knows of a pod is on disk, and
// a keeper that dies only hands its pod inits to the nearest subreaper,
// which is cubbyd when cubbyd started it.
package keeper
