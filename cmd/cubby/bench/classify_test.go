package bench

import (
	"slices"
	"testing"
)

func TestClassify(t *testing.T) {
	const (
		ctrA = "aaaaaaaaaaaa1111111111111111"
		ctrB = "bbbbbbbbbbbb2222222222222222"
		podA = "cccccccccccc3333333333333333"
		podB = "dddddddddddd4444444444444444"
	)
	// p is a process that appeared during the run.
	p := func(pid, ppid int, comm, cg string) Process {
		return Process{Stat: Stat{PID: pid, PPID: ppid, Comm: comm, StartTime: 50}, MemoryCgroup: cg}
	}
	old := func(pid, ppid int, comm, cg string) Process {
		q := p(pid, ppid, comm, cg)
		q.StartTime = 5
		return q
	}
	host := []Process{
		old(1, 0, "systemd", "/init.scope"),
		old(2, 0, "kthreadd", ""),
		{Stat: Stat{PID: 3, PPID: 2, Comm: "kworker/0:1", StartTime: 60}}, // new kernel thread
		old(500, 1, "daemon", "/system.slice/runtime.service"),
		p(900, 1, "bash", "/user.slice/user-0.slice/session-1.scope"), // someone else's shell
		p(901, 900, "go", "/user.slice/user-0.slice/session-1.scope"),
	}
	baseline := map[ProcKey]bool{}
	for _, q := range host {
		if q.StartTime == 5 {
			baseline[q.Key()] = true
		}
	}

	tests := []struct {
		name       string
		containers []ContainerCgroup
		procs      []Process
		want       []string
	}{
		{
			name:       "cubby: pod init parents the container",
			containers: []ContainerCgroup{{ID: ctrA, Cgroup: "/cubby/" + podA + "/" + ctrA}},
			procs: []Process{
				p(600, 1, "cubby-pod", "/cubby/"+podA+"/"+podA),
				p(601, 600, "sleep", "/cubby/"+podA+"/"+ctrA),
				p(602, 601, "sh", "/cubby/"+podA+"/"+ctrA+"/sub"), // below the container
			},
			want: []string{"cubby-pod"},
		},
		{
			name: "containerd: shim in the daemon's cgroup, pause in the sandbox scope",
			containers: []ContainerCgroup{
				{ID: ctrA, Cgroup: "/kubepods/cri-containerd-" + ctrA + ".scope"},
				{ID: ctrB}, // no pid reported: matched by id
			},
			procs: []Process{
				p(600, 1, "containerd-shim", "/system.slice/runtime.service"),
				p(601, 600, "pause", "/kubepods/cri-containerd-"+podA+".scope"),
				p(602, 600, "sleep", "/kubepods/cri-containerd-"+ctrA+".scope"),
				p(610, 1, "containerd-shim", "/system.slice/runtime.service"),
				p(611, 610, "pause", "/kubepods/cri-containerd-"+podB+".scope"),
				p(612, 610, "sleep", "/kubepods/cri-containerd-"+ctrB+".scope"),
			},
			want: []string{"containerd-shim", "containerd-shim", "pause", "pause"},
		},
		{
			name:       "cri-o: conmon scopes named after the container, infra pause",
			containers: []ContainerCgroup{{ID: ctrA, Cgroup: "/kubepods/crio-" + ctrA + ".scope"}},
			procs: []Process{
				p(600, 1, "conmon", "/kubepods/crio-conmon-"+podA+".scope"),
				p(601, 600, "pause", "/kubepods/crio-"+podA+".scope"),
				p(602, 1, "conmon", "/kubepods/crio-conmon-"+ctrA+".scope"),
				p(603, 602, "sleep", "/kubepods/crio-"+ctrA+".scope"),
			},
			want: []string{"conmon", "conmon", "pause"},
		},
		{
			name:       "a sibling cgroup whose name extends a container's is not a container",
			containers: []ContainerCgroup{{ID: ctrA, Cgroup: "/box/" + ctrA}},
			procs: []Process{
				p(600, 1, "cubby-pod", "/box/"+podA),
				p(601, 600, "sleep", "/box/"+ctrA),
				p(602, 600, "helper", "/box/"+ctrA+"-x"),
			},
			want: []string{"cubby-pod", "helper"},
		},
		{
			name:       "the daemon is never counted, also as a container's parent",
			containers: []ContainerCgroup{{ID: ctrA, Cgroup: "/c/" + ctrA}},
			procs:      []Process{p(601, 500, "sleep", "/c/"+ctrA)},
			want:       nil,
		},
		{
			name:       "short ids match nothing",
			containers: []ContainerCgroup{{ID: "1"}},
			procs:      []Process{p(600, 1, "x", "/user-1.slice")},
			want:       nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := &Classifier{
				Baseline:   baseline,
				Exclude:    map[int]bool{500: true},
				Containers: tt.containers,
				PodIDs:     []string{podA, podB},
			}
			var got []string
			for _, q := range cl.Classify(append(slices.Clone(host), tt.procs...)) {
				got = append(got, q.Comm)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("runtime processes = %q, want %q", got, tt.want)
			}
		})
	}
}
