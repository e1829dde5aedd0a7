package containerinit

import (
	"reflect"
	"strings"
	"testing"
)

const hybridMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 /kubepods /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
50 22 0:50 / /mnt/other\040cg rw - cgroup cgroup rw,freezer
`

const hybridCgroup = `9:name=systemd:/system.slice/cubby.service
5:cpu,cpuacct:/kubepods/pod1/ctr
4:memory:/kubepods/pod1/ctr
3:pids:/kubepods/pod1/ctr
2:freezer:/x
1:blkio:/kubepods
0::/kubepods/pod1/ctr
`

func TestCgroupBinds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mountinfo string
		cgroup    string
		want      []cgroupBind
	}{
		{
			name:      "hybrid v1",
			mountinfo: hybridMountinfo,
			cgroup:    hybridCgroup,
			want: []cgroupBind{
				{"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr", "cpu,cpuacct"},
				{"/sys/fs/cgroup/memory/kubepods/pod1/ctr", "memory"},
				{"/sys/fs/cgroup/systemd/system.slice/cubby.service", "systemd"},
				{"/sys/fs/cgroup/unified/kubepods/pod1/ctr", "unified"},
				// The mount shows /kubepods at its root.
				{"/sys/fs/cgroup/pids/pod1/ctr", "pids"},
			},
		},
		{
			name:      "pure v2",
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			cgroup:    "0::/kubepods/pod1/ctr\n",
			want:      []cgroupBind{{"/sys/fs/cgroup/kubepods/pod1/ctr", ""}},
		},
		{
			name:      "cgroup outside the mount's root",
			mountinfo: "42 31 0:39 /kubepods /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
			cgroup:    "3:pids:/kubepodsX/ctr\n",
			want:      nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mounts, err := parseCgroupMounts(strings.NewReader(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			cgroups, err := parseProcCgroup(strings.NewReader(tc.cgroup))
			if err != nil {
				t.Fatal(err)
			}
			if got := cgroupBinds(mounts, cgroups); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cgroupBinds =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestParseCgroupMountsMalformed(t *testing.T) {
	if _, err := parseCgroupMounts(strings.NewReader("1 2 3\n")); err == nil {
		t.Error("parseCgroupMounts accepted a truncated line")
	}
	if _, err := parseProcCgroup(strings.NewReader("no colons\n")); err == nil {
		t.Error("parseProcCgroup accepted a line without colons")
	}
}
