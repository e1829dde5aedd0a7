// Package sandbox runs pods and containers on the host for cubbyd: it has
// the node's pod init keeper start the per-pod init (cubby-pod) in the
// pod's new net, ipc and uts namespaces (or the node's, for host network
// and ipc pods), the pod init making the pod's pid namespace (not for a
// host pid pod),
// pins those namespaces to files,
// watches the pod init, and drives it over its control socket to start,
// signal and wait for containers.
//
// Layout under the state directory:
//
//	<state>/keeper.sock                            socket of the pod init keeper (parent of every pod init)
//	<state>/keeper.log                             the keeper's own stderr
//	<state>/pods/<pod id>/ctl.sock                 control socket of the pod init
//	<state>/pods/<pod id>/init.log                 the pod init's own stderr
//	<state>/pods/<pod id>/ns/{net,ipc,uts,pid}     bind-mounted namespace files (those the pod has of its own; pid by the pod init, from its pod's PID 1)
//	<state>/pods/<pod id>/containers/<id>/exit.json exit records, written by the pod init
//	<state>/containers/<id>/config.json            OCI spec (the bundle)
//	<state>/containers/<id>/seccomp.json           its seccomp profile, compiled to BPF
//	<state>/containers/<id>/rootfs                 rootfs mount point
//	<state>/containers/<id>/pidns                  the container's own pid namespace, bind-mounted by the pod init (pid mode TARGET joins it)
//
// Subpackages run elsewhere: podinit in cubby-pod, containerinit in the
// container init stage, keeper in `cubby-pod keeper`, control is the
// protocol between them and cubbyd,
// crilog the log format, seccomp the profile compiler (cubbyd only: it
// links libseccomp).
package sandbox
