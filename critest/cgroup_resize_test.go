package critest

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

const hostCgroupRoot = "/sys/fs/cgroup"

// hostCgroupLayout tells whether this host is pure cgroup v2 (a cgroup2
// mount at /sys/fs/cgroup), and else the names of its v1 hierarchies
// there ("cpu", "memory", "systemd", ...).
func hostCgroupLayout(t *testing.T) (unified bool, v1 []string) {
	t.Helper()
	mounts, err := framework.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.MountPoint == hostCgroupRoot {
			unified = m.FSType == "cgroup2" // the last mount there is on top
		}
		if m.FSType == "cgroup" && path.Dir(m.MountPoint) == hostCgroupRoot && !slices.Contains(v1, path.Base(m.MountPoint)) {
			v1 = append(v1, path.Base(m.MountPoint))
		}
	}
	return unified, v1
}

// containerCgroupMounts returns the cgroup mounts container id sees under
// /sys/fs/cgroup, with the mount options of each.
func containerCgroupMounts(t *testing.T, env *framework.Env, id string) (mounts []framework.Mount, opts map[string]string) {
	t.Helper()
	out := execSync(t, env, id, 10, "cat", "/proc/self/mountinfo").GetStdout()
	all, err := framework.ParseMountinfo(out)
	if err != nil {
		t.Fatal(err)
	}
	opts = map[string]string{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 5 {
			opts[f[4]] = f[5]
		}
	}
	for _, m := range all {
		if (m.FSType == "cgroup" || m.FSType == "cgroup2") && (m.MountPoint == hostCgroupRoot || path.Dir(m.MountPoint) == hostCgroupRoot) {
			mounts = append(mounts, m)
		}
	}
	return mounts, opts
}

// catIn reads a file inside container id.
func catIn(t *testing.T, env *framework.Env, id, file string) string {
	t.Helper()
	resp := execSync(t, env, id, 10, "cat", file)
	if resp.GetExitCode() != 0 {
		t.Fatalf("cat %s in %q: exit %d: %s", file, id, resp.GetExitCode(), resp.GetStderr())
	}
	return strings.TrimSpace(string(resp.GetStdout()))
}

// TestContainerCgroupfsLayoutAsRunc checks that a container's
// /sys/fs/cgroup looks as runc makes it on this host: on v1 and hybrid
// hosts the v1 hierarchies only, each showing the container's own cgroup
// read-only, and no cgroup2 mount (a hybrid host's "unified" one would make
// the Kubernetes e2e framework, which runs `mount -t cgroup2` in the
// container, read the v2 files memory.max and cpu.max, which are not
// there); on a pure v2 host the container's cgroup2 directory.
func TestContainerCgroupfsLayoutAsRunc(t *testing.T) {
	env := suite.NewEnv(t)
	unified, v1 := hostCgroupLayout(t)
	const limit = 80 << 20
	_, id := runSleeper(t, env, "cgroupfs", func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit}
	})
	mounts, opts := containerCgroupMounts(t, env, id)
	for _, m := range mounts {
		t.Logf("container mount: %s %s root %s (%s)", m.MountPoint, m.FSType, m.Root, opts[m.MountPoint])
		if !slices.Contains(strings.Split(opts[m.MountPoint], ","), "ro") {
			t.Errorf("%s is not read-only in the container: %s", m.MountPoint, opts[m.MountPoint])
		}
	}
	v2 := seesCgroup2(t, env, id)

	if unified {
		if len(mounts) != 1 || mounts[0].MountPoint != hostCgroupRoot || mounts[0].FSType != "cgroup2" {
			t.Errorf("pure v2 host: the container's cgroup mounts are %v, want one cgroup2 at %s", mounts, hostCgroupRoot)
		}
		if !v2 {
			t.Errorf("pure v2 host: `mount -t cgroup2` in the container shows nothing")
		}
		if got := catIn(t, env, id, hostCgroupRoot+"/memory.max"); got != strconv.Itoa(limit) {
			t.Errorf("memory.max in the container = %s, want %d", got, limit)
		}
		return
	}
	if v2 {
		t.Errorf("v1 host: `mount -t cgroup2` in the container shows a mount; runc shows none")
	}
	var names []string
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			t.Errorf("v1 host: the container has a %s mount at %s", m.FSType, m.MountPoint)
			continue
		}
		names = append(names, path.Base(m.MountPoint))
	}
	slices.Sort(names)
	slices.Sort(v1)
	if !slices.Equal(names, v1) {
		t.Errorf("v1 hierarchies in the container %q, on the host %q", names, v1)
	}
	if got := catIn(t, env, id, hostCgroupRoot+"/memory/memory.limit_in_bytes"); got != strconv.Itoa(limit) {
		t.Errorf("memory.limit_in_bytes in the container = %s, want its own limit %d", got, limit)
	}
	if _, err := os.Stat(hostCgroupRoot + "/memory.max"); err == nil {
		t.Errorf("memory.max exists on a v1 host")
	}
}

// cgroupLimits are the limits a container reads in its own cgroup files.
type cgroupLimits struct {
	memory, cpuQuota, cpuPeriod string
}

// seesCgroup2 is how the Kubernetes e2e framework tells whether container
// id is on a cgroup v2 node: `mount -t cgroup2` in it shows something.
func seesCgroup2(t *testing.T, env *framework.Env, id string) bool {
	t.Helper()
	return strings.TrimSpace(string(execSync(t, env, id, 10, "sh", "-c", "mount -t cgroup2").GetStdout())) != ""
}

// ownCgroupLimits reads the memory and cpu limits inside container id, in
// the files the Kubernetes e2e framework reads: the v2 ones if the
// container sees a cgroup2 mount, else the v1 ones.
func ownCgroupLimits(t *testing.T, env *framework.Env, id string) cgroupLimits {
	t.Helper()
	if seesCgroup2(t, env, id) {
		cpu := strings.Fields(catIn(t, env, id, hostCgroupRoot+"/cpu.max"))
		if len(cpu) != 2 {
			t.Fatalf("cpu.max in %q: %q", id, cpu)
		}
		if cpu[0] == "max" {
			cpu[0] = "-1" // as v1 shows no limit
		}
		mem := catIn(t, env, id, hostCgroupRoot+"/memory.max")
		return cgroupLimits{memory: mem, cpuQuota: cpu[0], cpuPeriod: cpu[1]}
	}
	return cgroupLimits{
		memory:    catIn(t, env, id, hostCgroupRoot+"/memory/memory.limit_in_bytes"),
		cpuQuota:  catIn(t, env, id, hostCgroupRoot+"/cpu/cpu.cfs_quota_us"),
		cpuPeriod: catIn(t, env, id, hostCgroupRoot+"/cpu/cpu.cfs_period_us"),
	}
}

// TestInPlaceResize resizes a running container as kubelet 1.37 does
// (UpdateContainerResources with the whole LinuxContainerResources), its
// memory and cpu limits up, down and the cpu limit away, and then its pod
// (UpdatePodSandboxResources): each time the container reads its new
// limits in its own /sys/fs/cgroup, and ContainerStatus reports them.
// Its pod cgroup is kubelet's (cgroup_parent), as on a node.
func TestInPlaceResize(t *testing.T) {
	env := suite.NewEnv(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	resources := func(mem, quota, shares int64) *runtimeapi.LinuxContainerResources {
		return &runtimeapi.LinuxContainerResources{
			CpuPeriod: 100000, CpuQuota: quota, CpuShares: shares,
			MemoryLimitInBytes: mem, OomScoreAdj: 1000,
		}
	}
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	// The pod's cgroup is kubelet's: registered before the pod exists, its
	// removal runs after the pod's.
	cgroupParent := "/critest-" + framework.RandomHex(4)
	t.Cleanup(func() { framework.RemoveCgroup(t, cgroupParent) })
	podCfg := podConfig("resize", t.TempDir())
	podCfg.Linux.CgroupParent = cgroupParent
	podID := runPod(t, env, podCfg)
	ccfg := containerConfig("resize", reg.Ref, "resize.log", "sleep", "4242")
	ccfg.Linux.Resources = resources(64<<20, 50000, 512)
	id := createContainer(t, env, podID, podCfg, ccfg)
	startContainer(t, env, id)

	steps := []struct {
		name string
		res  *runtimeapi.LinuxContainerResources
	}{
		{"up", resources(128<<20, 150000, 1536)},
		{"down", resources(48<<20, 20000, 204)},
		// kubelet lifts a cpu limit with a quota of -1.
		{"cpu limit lifted", resources(48<<20, -1, 204)},
	}
	for _, s := range steps {
		if _, err := rs.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: s.res}); err != nil {
			t.Fatalf("resize %s: UpdateContainerResources: %v", s.name, err)
		}
		want := cgroupLimits{memory: strconv.FormatInt(s.res.MemoryLimitInBytes, 10), cpuQuota: strconv.FormatInt(s.res.CpuQuota, 10), cpuPeriod: "100000"}
		if got := ownCgroupLimits(t, env, id); got != want {
			t.Errorf("resize %s: the container reads %+v, want %+v", s.name, got, want)
		}
		st, _ := containerStatus(t, env, id, false)
		got := st.GetResources().GetLinux()
		if got.GetMemoryLimitInBytes() != s.res.MemoryLimitInBytes || got.GetCpuQuota() != s.res.CpuQuota ||
			got.GetCpuPeriod() != s.res.CpuPeriod || got.GetCpuShares() != s.res.CpuShares {
			t.Errorf("resize %s: ContainerStatus resources %v, want %v", s.name, got, s.res)
		}
	}

	// kubelet resizes the pod cgroups it made itself, then tells the
	// runtime, which leaves them alone and the container as it is.
	pod := &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 300000, CpuShares: 3072, MemoryLimitInBytes: 256 << 20}
	if _, err := rs.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID, Resources: pod}); err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	if got := ownCgroupLimits(t, env, id); got.memory != strconv.Itoa(48<<20) {
		t.Errorf("after the pod resize the container reads memory %s, want its own %d", got.memory, 48<<20)
	}
}

// TestPodResizeOfOwnedPodCgroup resizes a pod whose cgroup cubby made (no
// cgroup_parent): UpdatePodSandboxResources sets the pod cgroup's limits.
// Other runtimes leave pod cgroups to kubelet.
func TestPodResizeOfOwnedPodCgroup(t *testing.T) {
	if suite.Options().External() {
		t.Skip("cubby sizes the pod cgroups it makes; -endpoint given")
	}
	env := suite.NewEnv(t)
	ctx := framework.Context(t)
	rs := env.RuntimeService()
	podID, id := runSleeper(t, env, "podresize", func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 48 << 20}
	})
	// The pod cgroup is the container's parent. Its limits are read on
	// the host: the container's cgroup namespace does not show them.
	_, info := containerStatus(t, env, id, true)
	v := verboseInfo(t, "container "+id, info)
	_, limitFile, err := framework.MemoryCgroup(v.Pid)
	if err != nil {
		t.Skipf("no memory cgroup to check the pod's on: %v", err)
	}
	// <pod cgroup>/<container>/<limit file>
	podLimitFile := filepath.Join(filepath.Dir(filepath.Dir(limitFile)), filepath.Base(limitFile))
	for _, mem := range []int64{256 << 20, 96 << 20} {
		pod := &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 300000, CpuShares: 3072, MemoryLimitInBytes: mem}
		if _, err := rs.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID, Resources: pod}); err != nil {
			t.Fatalf("UpdatePodSandboxResources to %d: %v", mem, err)
		}
		b, err := os.ReadFile(podLimitFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(mem, 10) {
			t.Errorf("pod memory limit %s = %s, want %d", podLimitFile, got, mem)
		}
	}
	// The container keeps its own limits.
	if got := ownCgroupLimits(t, env, id); got.memory != strconv.Itoa(48<<20) {
		t.Errorf("after the pod resize the container reads memory %s, want its own %d", got.memory, 48<<20)
	}
}
