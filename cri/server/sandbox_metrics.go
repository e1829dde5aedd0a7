package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cgroupmgr"
	"cubby/cri/store"
	"cubby/rootfs"
	"cubby/sandbox"
)

// The CRI metrics calls serve the cAdvisor-named metrics kubelet exports
// when it takes stats from the runtime (PodAndContainerStatsFromCRI), read
// from each container's cgroup, its processes and its writable layer, and
// from the pod's network namespace. Values are whole units of the name
// (seconds, bytes), as CRI metrics carry integers.

// Label keys: every container metric is labelled like CRI-O's, with the
// container's id, name and image; pod network metrics with the pod's id,
// name and the interface.
var (
	containerLabels = []string{"id", "name", "image"}
	networkLabels   = []string{"id", "name", "interface"}
)

// containerSample is what one container's metrics are computed from.
type containerSample struct {
	rec   store.Container
	cg    cgroupmgr.Metrics
	procs cgroupmgr.ProcessMetrics
	fs    rootfs.SnapshotUsage
	now   time.Time
}

// value is one series of a metric: extra label values after the base
// ones, and the value.
type value struct {
	labels []string
	v      uint64
}

func one(v uint64) []value { return []value{{v: v}} }

// containerMetric is one cAdvisor metric computed for a container.
type containerMetric struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string // label keys after containerLabels
	values     func(containerSample) []value
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

var containerMetrics = []containerMetric{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUUsageNanos / 1e9) }},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUUserNanos / 1e9) }},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUSystemNanos / 1e9) }},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUPeriods) }},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUThrottledPeriods) }},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil, func(s containerSample) []value { return one(s.cg.CPUThrottledNanos / 1e9) }},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryUsage) }},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryWorkingSet) }},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryMaxUsage) }},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryCache) }},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryRSS) }},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryMappedFile) }},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemorySwap) }},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryKernel) }},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil, func(s containerSample) []value { return one(s.cg.MemoryFailcnt) }},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}, func(s containerSample) []value {
		return []value{
			{[]string{"pgfault", "container"}, s.cg.PageFaults}, {[]string{"pgmajfault", "container"}, s.cg.MajorPageFaults},
			{[]string{"pgfault", "hierarchy"}, s.cg.PageFaults}, {[]string{"pgmajfault", "hierarchy"}, s.cg.MajorPageFaults},
		}
	}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil, func(s containerSample) []value { return one(s.cg.OOMKills) }},
	{"container_processes", "Number of processes running inside the container.", gauge, nil, func(s containerSample) []value { return one(s.procs.Processes) }},
	{"container_threads", "Number of threads running inside the container.", gauge, nil, func(s containerSample) []value { return one(s.procs.Threads) }},
	{"container_threads_max", "Maximum number of threads allowed inside the container, 0 for no limit.", gauge, nil, func(s containerSample) []value { return one(s.cg.PidsMax) }},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil, func(s containerSample) []value { return one(s.procs.FileDescriptors) }},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil, func(s containerSample) []value { return one(s.procs.Sockets) }},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil, func(s containerSample) []value { return one(s.cg.CPUPeriod) }},
	{"container_spec_cpu_quota", "CPU quota of the container, 0 for none.", gauge, nil, func(s containerSample) []value { return one(s.cg.CPUQuota) }},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil, func(s containerSample) []value { return one(s.cg.CPUShares) }},
	{"container_spec_memory_limit_bytes", "Memory limit for the container, 0 for none.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryLimit) }},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container, 0 for none.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemoryReservation) }},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container, 0 for none.", gauge, nil, func(s containerSample) []value { return one(s.cg.MemorySwapLimit) }},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil, func(s containerSample) []value { return one(uint64(s.rec.StartedAt / 1e9)) }},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil, func(s containerSample) []value { return one(uint64(s.now.Unix())) }},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}, ioValues(func(d cgroupmgr.DeviceIO) uint64 { return d.ReadBytes })},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}, ioValues(func(d cgroupmgr.DeviceIO) uint64 { return d.WriteBytes })},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}, ioValues(func(d cgroupmgr.DeviceIO) uint64 { return d.Reads })},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}, ioValues(func(d cgroupmgr.DeviceIO) uint64 { return d.Writes })},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, []string{"device", "major", "minor", "operation"}, func(s containerSample) []value {
		var out []value
		for _, d := range s.cg.IO {
			dev, maj, min := deviceName(d), strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
			out = append(out, value{[]string{dev, maj, min, "Read"}, d.ReadBytes}, value{[]string{dev, maj, min, "Write"}, d.WriteBytes})
		}
		return out
	}},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}, func(s containerSample) []value {
		return []value{{[]string{s.fs.Path}, s.fs.UsedBytes}}
	}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}, func(s containerSample) []value {
		return []value{{[]string{s.fs.Path}, s.fs.CapacityBytes}}
	}},
	{"container_fs_inodes_total", "Number of inodes on the container's filesystem.", gauge, []string{"device"}, func(s containerSample) []value {
		return []value{{[]string{s.fs.Path}, s.fs.TotalInodes}}
	}},
	{"container_fs_inodes_free", "Number of available inodes on the container's filesystem.", gauge, []string{"device"}, func(s containerSample) []value {
		return []value{{[]string{s.fs.Path}, s.fs.FreeInodes}}
	}},
}

// ioValues is one series per block device of the container's I/O.
func ioValues(get func(cgroupmgr.DeviceIO) uint64) func(containerSample) []value {
	return func(s containerSample) []value {
		out := make([]value, 0, len(s.cg.IO))
		for _, d := range s.cg.IO {
			out = append(out, value{[]string{deviceName(d)}, get(d)})
		}
		return out
	}
}

// deviceName names a block device the way the kernel's io files do.
func deviceName(d cgroupmgr.DeviceIO) string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// networkMetric is one cAdvisor network metric of a pod interface.
type networkMetric struct {
	name, help string
	value      func(sandbox.InterfaceStats) uint64
}

var networkMetrics = []networkMetric{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", func(i sandbox.InterfaceStats) uint64 { return i.RxBytes }},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", func(i sandbox.InterfaceStats) uint64 { return i.RxPackets }},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", func(i sandbox.InterfaceStats) uint64 { return i.RxErrors }},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", func(i sandbox.InterfaceStats) uint64 { return i.RxDropped }},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", func(i sandbox.InterfaceStats) uint64 { return i.TxBytes }},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", func(i sandbox.InterfaceStats) uint64 { return i.TxPackets }},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", func(i sandbox.InterfaceStats) uint64 { return i.TxErrors }},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", func(i sandbox.InterfaceStats) uint64 { return i.TxDropped }},
}

// ListMetricDescriptors lists every metric ListPodSandboxMetrics returns.
func (s *Server) ListMetricDescriptors(ctx context.Context, r *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(containerMetrics)+len(networkMetrics))
	for _, m := range containerMetrics {
		out = append(out, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: append(append([]string{}, containerLabels...), m.extra...)})
	}
	for _, m := range networkMetrics {
		out = append(out, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: networkLabels})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod: its network
// interfaces' counters, and for each running container the rest.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, r *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	var out []*runtimeapi.PodSandboxMetrics
	for _, p := range s.objs.pods.list() {
		m, err := s.podMetrics(p)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches.
func (s *Server) StreamPodSandboxMetrics(r *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	ctx := stream.Context()
	resp, err := s.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return sendBatches(ctx, resp.GetPodMetrics(), func(b []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b})
	})
}

// podMetrics computes pod p's metrics; nil for a pod that is not ready.
func (s *Server) podMetrics(p *pod) (*runtimeapi.PodSandboxMetrics, error) {
	rec := p.status()
	if rec.State != store.PodReady {
		return nil, nil
	}
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.id}
	if !namespacesOf(p.config).hostNetwork {
		ifs, err := s.rt.PodNetworkStats(p.id, rec.Pid)
		if err != nil {
			return nil, err
		}
		for _, m := range networkMetrics {
			for _, i := range ifs {
				out.Metrics = append(out.Metrics, &runtimeapi.Metric{
					Name: m.name, MetricType: counter,
					LabelValues: []string{p.id, p.config.GetMetadata().GetName(), i.Name},
					Value:       &runtimeapi.UInt64Value{Value: m.value(i)},
				})
			}
		}
	}
	for _, c := range s.objs.podContainers(p.id) {
		cm, err := s.containerMetrics(c)
		if err != nil {
			return nil, err
		}
		if cm != nil {
			out.ContainerMetrics = append(out.ContainerMetrics, cm)
		}
	}
	return out, nil
}

// containerMetrics computes container c's metrics; nil unless it runs.
func (s *Server) containerMetrics(c *container) (*runtimeapi.ContainerMetrics, error) {
	rec := c.status()
	if rec.State != store.ContainerRunning {
		return nil, nil
	}
	sample := containerSample{rec: rec, now: time.Now()}
	var err error
	if sample.cg, err = s.cgroups.Metrics(rec.CgroupPath); errors.Is(err, cgroupmgr.ErrNotFound) {
		return nil, nil // exited and being cleaned up
	} else if err != nil {
		return nil, fmt.Errorf("metrics of container %q: %w", c.id, err)
	}
	if sample.procs, err = s.cgroups.ProcessMetrics(rec.CgroupPath); errors.Is(err, cgroupmgr.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("metrics of container %q: %w", c.id, err)
	}
	if sample.fs, err = s.images.SnapshotUsage(c.id); err != nil {
		return nil, fmt.Errorf("metrics of container %q: %w", c.id, err)
	}
	base := []string{c.id, c.config.GetMetadata().GetName(), rec.ImageRef}
	out := &runtimeapi.ContainerMetrics{ContainerId: c.id}
	for _, m := range containerMetrics {
		for _, v := range m.values(sample) {
			out.Metrics = append(out.Metrics, &runtimeapi.Metric{
				Name: m.name, MetricType: m.typ,
				LabelValues: append(append([]string{}, base...), v.labels...),
				Value:       &runtimeapi.UInt64Value{Value: v.v},
			})
		}
	}
	return out, nil
}
