package server

// Fault points: named steps inside the RPCs that change state, where a
// crash-consistency test has cubbyd killed (Config.Fault, set from
// CUBBY_TEST_FAULT by cubbyd). Each name says what is done when it is hit.
// PullImage's point is the image store's (rootfs.Config.Fault).
const (
	faultPodRecorded  = "run-pod-sandbox/recorded"      // record on disk, nothing on the host
	faultPodCgroups   = "run-pod-sandbox/cgroups"       // pod and init cgroups made
	faultPodFiles     = "run-pod-sandbox/files"         // pod directory and files written
	faultPodInit      = "run-pod-sandbox/pod-init"      // init running, namespaces pinned, pid not recorded
	faultPodNetwork   = "run-pod-sandbox/network"       // CNI ADD done, pod not recorded ready
	faultPodDone      = "run-pod-sandbox/done"          // pod ready, not answered
	faultCtrRecorded  = "create-container/recorded"     // record on disk, nothing on the host
	faultCtrSnapshot  = "create-container/snapshot"     // writable layer made, not mounted
	faultCtrMounted   = "create-container/mounted"      // rootfs mounted, no bundle
	faultCtrBundle    = "create-container/bundle"       // bundle written, not recorded created
	faultCtrDone      = "create-container/done"         // container created, not answered
	faultStartCgroup  = "start-container/cgroup"        // cgroup made, no process
	faultStartProcess = "start-container/process"       // process running, not recorded running
	faultStartDone    = "start-container/done"          // recorded running, not answered
	faultStopPodInit  = "stop-pod-sandbox/pod-init"     // init and containers gone, network up
	faultStopNetwork  = "stop-pod-sandbox/network"      // CNI DEL done, not recorded
	faultRemoveCtrs   = "remove-pod-sandbox/containers" // containers removed, pod directory left
	faultRemovePodDir = "remove-pod-sandbox/pod-dir"    // pod directory and cgroup gone, record left
)

// fault marks fault point name: with a hook configured, the hook may end
// the process here. Without one it costs a nil check.
func (s *Server) fault(name string) {
	if s.cfg.Fault != nil {
		s.cfg.Fault(name)
	}
}
