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

// v1Mountinfo is a v1 host without a cgroup2 mount (this machine's kind).
const v1Mountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
`

func TestCgroupBinds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mountinfo string
		cgroup    string
		unified   bool
		want      []cgroupBind
	}{
		{
			name:      "hybrid: the v1 hierarchies, not unified",
			mountinfo: hybridMountinfo,
			cgroup:    hybridCgroup,
			want: []cgroupBind{
				{"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr", "cpu,cpuacct"},
				{"/sys/fs/cgroup/memory/kubepods/pod1/ctr", "memory"},
				{"/sys/fs/cgroup/systemd/system.slice/cubby.service", "systemd"},
				// The mount shows /kubepods at its root.
				{"/sys/fs/cgroup/pids/pod1/ctr", "pids"},
			},
		},
		{
			name:      "v1",
			mountinfo: v1Mountinfo,
			cgroup:    "9:name=systemd:/\n4:memory:/cubby/p/c\n1:cpu:/cubby/p/c\n0::/\n",
			want: []cgroupBind{
				{"/sys/fs/cgroup/cpu/cubby/p/c", "cpu"},
				{"/sys/fs/cgroup/memory/cubby/p/c", "memory"},
				{"/sys/fs/cgroup/systemd", "systemd"},
			},
		},
		{
			name:      "pure v2",
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			cgroup:    "0::/kubepods/pod1/ctr\n",
			unified:   true,
			want:      []cgroupBind{{"/sys/fs/cgroup/kubepods/pod1/ctr", ""}},
		},
		{
			name: "pure v2, other cgroup2 mounts ignored",
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
				"31 30 0:26 /x /sys/fs/cgroup/x rw - cgroup2 cgroup2 rw\n" +
				"32 23 0:26 / /mnt/cg rw - cgroup2 cgroup2 rw\n",
			cgroup:  "0::/kubepods/pod1/ctr\n",
			unified: true,
			want:    []cgroupBind{{"/sys/fs/cgroup/kubepods/pod1/ctr", ""}},
		},
		{
			name:      "v2 in a node container's cgroup namespace (kind)",
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			cgroup:    "0::/kubelet.slice/pod1/ctr\n",
			unified:   true,
			want:      []cgroupBind{{"/sys/fs/cgroup/kubelet.slice/pod1/ctr", ""}},
		},
		{
			name: "cgroup2 covered by a tmpfs: not unified",
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
				"31 30 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
				"32 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			cgroup: "4:memory:/c\n0::/c\n",
			want:   []cgroupBind{{"/sys/fs/cgroup/memory/c", "memory"}},
		},
		{
			name:      "cgroup outside the mount's root",
			mountinfo: "42 31 0:39 /kubepods /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
			cgroup:    "3:pids:/kubepodsX/ctr\n",
			want:      nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := parseCgroupMounts(strings.NewReader(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			if table.unified != tc.unified {
				t.Errorf("unified = %v, want %v", table.unified, tc.unified)
			}
			cgroups, err := parseProcCgroup(strings.NewReader(tc.cgroup))
			if err != nil {
				t.Fatal(err)
			}
			if got := cgroupBinds(table, cgroups); !reflect.DeepEqual(got, tc.want) {
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
