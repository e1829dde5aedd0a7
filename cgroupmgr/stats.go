package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

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

// readUint reads a file holding one unsigned number. A missing cgroup is
// ErrNotFound.
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", file, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", file, err)
	}
	return v, nil
}

// memoryStat returns the value of key in a memory.stat file (0 if absent).
func memoryStat(file, key string) (uint64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", file, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, nil
}
