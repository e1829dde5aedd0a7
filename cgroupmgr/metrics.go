package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// Metrics are a cgroup's detailed counters and the limits in force, the
// raw material of the cAdvisor-named metrics kubelet serves. Counters the
// kernel does not keep here read as zero; a limit of zero means none.
type Metrics struct {
	CPUUsageNanos, CPUUserNanos, CPUSystemNanos        uint64
	CPUPeriods, CPUThrottledPeriods, CPUThrottledNanos uint64

	MemoryUsage, MemoryMaxUsage, MemoryWorkingSet uint64
	MemoryCache, MemoryRSS, MemoryMappedFile      uint64
	MemorySwap, MemoryKernel, MemoryFailcnt       uint64
	PageFaults, MajorPageFaults, OOMKills         uint64

	CPUPeriod, CPUQuota, CPUShares                  uint64
	MemoryLimit, MemorySwapLimit, MemoryReservation uint64
	PidsCurrent, PidsMax                            uint64

	// IO is the block I/O per device, in device order.
	IO []DeviceIO
}

// DeviceIO is the block I/O of a cgroup on one device.
type DeviceIO struct {
	Major, Minor                         uint64
	ReadBytes, WriteBytes, Reads, Writes uint64
}

// unlimited is where kernel "no limit" values start (v1 writes
// PAGE_COUNTER_MAX pages in bytes, pids writes "max").
const unlimited = 1 << 62

// Metrics reads the detailed counters of the cgroup at path.
func (m *Manager) Metrics(path string) (Metrics, error) {
	if err := validatePath(path); err != nil {
		return Metrics{}, err
	}
	var (
		out Metrics
		err error
	)
	switch b := m.b.(type) {
	case *v1:
		out, err = b.metrics(path)
	case *v2:
		out, err = b.metrics(path)
	default:
		return Metrics{}, fmt.Errorf("metrics of cgroup %q: %w", path, ErrUnsupported)
	}
	if err != nil {
		return Metrics{}, fmt.Errorf("metrics of cgroup %q: %w", path, err)
	}
	return out, nil
}

// fileReader reads cgroup files of one directory; a missing file reads as
// empty, so counters of absent controllers are zero.
type fileReader struct{ dir string }

func (r fileReader) raw(name string) string {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// uint reads a one-number file; "max", negative and unlimited values are 0.
func (r fileReader) uint(name string) uint64 {
	return parseLimit(r.raw(name))
}

func parseLimit(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v >= unlimited {
		return 0
	}
	return v
}

// keyed reads a "key value" per line file.
func (r fileReader) keyed(name string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.Lines(r.raw(name)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// userHZ is the unit of cpuacct.stat (USER_HZ is 100 on every Linux ABI).
const userHZ = 100

func (v *v1) metrics(path string) (Metrics, error) {
	var out Metrics
	dir := func(n cgroup1.Name) (fileReader, bool) {
		s := v.subsystem(n)
		if s == nil {
			return fileReader{}, false
		}
		return fileReader{s.Path(path)}, true
	}
	mem, ok := dir(cgroup1.Memory)
	if ok {
		if _, err := os.Stat(mem.dir); errors.Is(err, os.ErrNotExist) {
			return Metrics{}, fmt.Errorf("cgroup %q: %w", path, ErrNotFound)
		}
		st := mem.keyed("memory.stat")
		out.MemoryUsage = mem.uint("memory.usage_in_bytes")
		out.MemoryMaxUsage = mem.uint("memory.max_usage_in_bytes")
		out.MemoryWorkingSet = workingSet(out.MemoryUsage, st["total_inactive_file"])
		out.MemoryCache = st["total_cache"]
		out.MemoryRSS = st["total_rss"]
		out.MemoryMappedFile = st["total_mapped_file"]
		out.MemorySwap = st["total_swap"]
		out.PageFaults = st["total_pgfault"]
		out.MajorPageFaults = st["total_pgmajfault"]
		out.MemoryKernel = mem.uint("memory.kmem.usage_in_bytes")
		out.MemoryFailcnt = mem.uint("memory.failcnt")
		out.OOMKills = mem.keyed("memory.oom_control")["oom_kill"]
		out.MemoryLimit = mem.uint("memory.limit_in_bytes")
		out.MemorySwapLimit = mem.uint("memory.memsw.limit_in_bytes")
		out.MemoryReservation = mem.uint("memory.soft_limit_in_bytes")
	}
	if acct, ok := dir(cgroup1.Cpuacct); ok {
		out.CPUUsageNanos = acct.uint("cpuacct.usage")
		st := acct.keyed("cpuacct.stat")
		out.CPUUserNanos = st["user"] * (1e9 / userHZ)
		out.CPUSystemNanos = st["system"] * (1e9 / userHZ)
	}
	if cpu, ok := dir(cgroup1.Cpu); ok {
		st := cpu.keyed("cpu.stat")
		out.CPUPeriods, out.CPUThrottledPeriods, out.CPUThrottledNanos = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		out.CPUPeriod = cpu.uint("cpu.cfs_period_us")
		out.CPUQuota = cpu.uint("cpu.cfs_quota_us") // -1 (none) reads as 0
		out.CPUShares = cpu.uint("cpu.shares")
	}
	if pids, ok := dir(cgroup1.Pids); ok {
		out.PidsCurrent = pids.uint("pids.current")
		out.PidsMax = pids.uint("pids.max")
	}
	if blkio, ok := dir(cgroup1.Blkio); ok {
		out.IO = v1IO(blkio.raw("blkio.throttle.io_service_bytes_recursive"), blkio.raw("blkio.throttle.io_serviced_recursive"))
	}
	return out, nil
}

// v1IO merges blkio's "major:minor Read|Write|... N" byte and operation
// counts per device.
func v1IO(bytes, ops string) []DeviceIO {
	devs := map[[2]uint64]*DeviceIO{}
	var order [][2]uint64
	add := func(text string, read, write func(*DeviceIO, uint64)) {
		for line := range strings.Lines(text) {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			maj, min, ok := parseDevice(f[0])
			n, err := strconv.ParseUint(f[2], 10, 64)
			if !ok || err != nil {
				continue
			}
			key := [2]uint64{maj, min}
			d := devs[key]
			if d == nil {
				d = &DeviceIO{Major: maj, Minor: min}
				devs[key] = d
				order = append(order, key)
			}
			switch f[1] {
			case "Read":
				read(d, n)
			case "Write":
				write(d, n)
			}
		}
	}
	add(bytes, func(d *DeviceIO, n uint64) { d.ReadBytes = n }, func(d *DeviceIO, n uint64) { d.WriteBytes = n })
	add(ops, func(d *DeviceIO, n uint64) { d.Reads = n }, func(d *DeviceIO, n uint64) { d.Writes = n })
	out := make([]DeviceIO, 0, len(order))
	for _, k := range order {
		out = append(out, *devs[k])
	}
	return out
}

// v2IO parses io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N ...".
func v2IO(text string) []DeviceIO {
	var out []DeviceIO
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDevice(f[0])
		if !ok {
			continue
		}
		d := DeviceIO{Major: maj, Minor: min}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WriteBytes = n
			case "rios":
				d.Reads = n
			case "wios":
				d.Writes = n
			}
		}
		out = append(out, d)
	}
	return out
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return major, minor, err1 == nil && err2 == nil
}

func (v *v2) metrics(path string) (Metrics, error) {
	r := fileReader{v.dirs(path)[0]}
	if _, err := os.Stat(r.dir); errors.Is(err, os.ErrNotExist) {
		return Metrics{}, fmt.Errorf("cgroup %q: %w", path, ErrNotFound)
	}
	var out Metrics
	cpu := r.keyed("cpu.stat")
	out.CPUUsageNanos = cpu["usage_usec"] * 1000
	out.CPUUserNanos = cpu["user_usec"] * 1000
	out.CPUSystemNanos = cpu["system_usec"] * 1000
	out.CPUPeriods, out.CPUThrottledPeriods, out.CPUThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	if f := strings.Fields(r.raw("cpu.max")); len(f) == 2 {
		out.CPUQuota, out.CPUPeriod = parseLimit(f[0]), parseLimit(f[1])
	}
	if w := r.uint("cpu.weight"); w > 0 {
		out.CPUShares = 2 + (w-1)*262142/9999 // the inverse of SharesToWeight
	}
	st := r.keyed("memory.stat")
	out.MemoryUsage = r.uint("memory.current")
	out.MemoryMaxUsage = r.uint("memory.peak")
	out.MemoryWorkingSet = workingSet(out.MemoryUsage, st["inactive_file"])
	out.MemoryCache = st["file"]
	out.MemoryRSS = st["anon"]
	out.MemoryMappedFile = st["file_mapped"]
	out.MemorySwap = r.uint("memory.swap.current")
	out.MemoryKernel = st["kernel"]
	out.PageFaults, out.MajorPageFaults = st["pgfault"], st["pgmajfault"]
	ev := r.keyed("memory.events")
	out.MemoryFailcnt, out.OOMKills = ev["max"], ev["oom_kill"]
	out.MemoryLimit = r.uint("memory.max")
	out.MemorySwapLimit = r.uint("memory.swap.max")
	out.MemoryReservation = r.uint("memory.low")
	out.PidsCurrent = r.uint("pids.current")
	out.PidsMax = r.uint("pids.max")
	out.IO = v2IO(r.raw("io.stat"))
	return out, nil
}

// ProcessMetrics count what the processes of a cgroup hold.
type ProcessMetrics struct {
	Processes, Threads, FileDescriptors, Sockets uint64
}

// ProcessMetrics counts the processes in the cgroup at path and below, their
// threads, open file descriptors and sockets, from /proc. Processes that
// exit meanwhile are skipped.
func (m *Manager) ProcessMetrics(path string) (ProcessMetrics, error) {
	pids, err := m.Pids(path)
	if err != nil {
		return ProcessMetrics{}, err
	}
	out := ProcessMetrics{Processes: uint64(len(pids))}
	for _, pid := range pids {
		proc := "/proc/" + strconv.Itoa(pid)
		if b, err := os.ReadFile(proc + "/status"); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "Threads:"); ok {
					n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
					out.Threads += n
				}
			}
		}
		fds, err := os.ReadDir(proc + "/fd")
		if err != nil {
			continue
		}
		out.FileDescriptors += uint64(len(fds))
		for _, fd := range fds {
			if l, err := os.Readlink(proc + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
				out.Sockets++
			}
		}
	}
	return out, nil
}
