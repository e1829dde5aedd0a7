package cgroupmgr

// Stats is the resource use of a cgroup and its descendants.
type Stats struct {
	// CPUUsageNanos is the CPU time consumed since the cgroup was made.
	CPUUsageNanos uint64
	// MemoryUsageBytes is the memory charged to the cgroup, page cache
	// included.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is MemoryUsageBytes less inactive file cache:
	// what kubelet evicts on and what the OOM killer cannot reclaim cheaply.
	MemoryWorkingSetBytes uint64
}

// workingSet subtracts reclaimable inactive file pages from usage, clamped
// at zero.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}
