package bench

import (
	"errors"
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "4242 (cubby-pod) S 1 4242 4242 0 -1 4194560 300 0 0 0 12 34 0 0 20 0 5 0 98765 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			want: Stat{PID: 4242, Comm: "cubby-pod", PPID: 1, Flags: 4194560, UTime: 12, STime: 34, StartTime: 98765},
		},
		{
			name: "comm with spaces and parens",
			in:   "7 (a) b (c)) R 2 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 15 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0",
			want: Stat{PID: 7, Comm: "a) b (c)", PPID: 2, Flags: 2129984, UTime: 0, STime: 1, StartTime: 15},
		},
		{name: "no comm", in: "12 S 1 2", wantErr: true},
		{name: "too short", in: "12 (x) S 1 2 3", wantErr: true},
		{name: "bad number", in: "12 (x) S 1 0 0 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 15", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrParse) {
					t.Fatalf("err = %v, want ErrParse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatKernel(t *testing.T) {
	tests := []struct {
		st   Stat
		want bool
	}{
		{Stat{PID: 2, PPID: 0}, true},
		{Stat{PID: 30, PPID: 2}, true},
		{Stat{PID: 31, PPID: 1, Flags: pfKthread}, true},
		{Stat{PID: 4242, PPID: 1, Flags: 4194560}, false},
	}
	for _, tt := range tests {
		if got := tt.st.Kernel(); got != tt.want {
			t.Errorf("%+v Kernel() = %v, want %v", tt.st, got, tt.want)
		}
	}
}

func TestParseKBField(t *testing.T) {
	status := "Name:\tcubby-pod\nVmPeak:\t  1000 kB\nVmRSS:\t    1536 kB\nThreads:\t1\n"
	rollup := "00400000-7ffd1000 ---p 00000000 00:00 0    [rollup]\nRss:                1536 kB\nPss:                 700 kB\nPss_Anon:            500 kB\n"
	tests := []struct {
		name, in, field string
		want            uint64
		wantErr         bool
	}{
		{"status rss", status, "VmRSS", 1536 * 1024, false},
		{"rollup pss, not Pss_Anon", rollup, "Pss", 700 * 1024, false},
		{"missing (kernel thread)", "Name:\tkthreadd\n", "VmRSS", 0, true},
		{"no unit", "VmRSS:\t12\n", "VmRSS", 0, true},
		{"bad number", "VmRSS:\t1x kB\n", "VmRSS", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKBField([]byte(tt.in), tt.field)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrParse)) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseMemoryCgroup(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{
			name: "v1 hybrid: memory line wins over unified",
			in:   "12:cpu,cpuacct:/cubby/p1/c1\n5:memory:/cubby/p1/c1\n1:name=systemd:/system.slice/x.service\n0::/system.slice/x.service\n",
			want: "/cubby/p1/c1",
		},
		{name: "v2 only", in: "0::/kubepods.slice/cri-containerd-abc.scope\n", want: "/kubepods.slice/cri-containerd-abc.scope"},
		{name: "path with colon", in: "4:memory:/a:b\n", want: "/a:b"},
		{name: "nothing", in: "3:cpu:/x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMemoryCgroup([]byte(tt.in))
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseUnixListener(t *testing.T) {
	const netUnix = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 21001 /run/containerd/containerd.sock
0000000000000000: 00000003 00000000 00000000 0001 03 21002 /run/containerd/containerd.sock
0000000000000000: 00000002 00000000 00010000 0001 01 21003 /run/cubby/cubby.sock
0000000000000000: 00000002 00000000 00000000 0002 01 21004
`
	tests := []struct {
		path    string
		want    uint64
		wantErr error
	}{
		{"/run/cubby/cubby.sock", 21003, nil},
		{"/run/containerd/containerd.sock", 21001, nil}, // the listener, not a connection
		{"/run/none.sock", 0, ErrNotFound},
	}
	for _, tt := range tests {
		got, err := ParseUnixListener([]byte(netUnix), tt.path)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ParseUnixListener(%s) = %d, %v; want %d, %v", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestProcSelf reads this process through the real /proc: no root needed.
func TestProcSelf(t *testing.T) {
	p := Proc{Root: "/proc"}
	pid := os.Getpid()
	st, err := p.Stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != pid || st.StartTime == 0 || st.Kernel() {
		t.Errorf("stat of self: %+v", st)
	}
	rss, err := p.RSS(pid)
	if err != nil || rss == 0 {
		t.Errorf("RSS of self = %d, %v", rss, err)
	}
	if _, err := os.Stat("/proc/self/smaps_rollup"); err == nil {
		pss, err := p.PSS(pid)
		if err != nil || pss == 0 {
			t.Errorf("PSS of self = %d, %v", pss, err)
		}
	}
	if _, err := p.MemoryCgroup(pid); err != nil {
		t.Errorf("memory cgroup of self: %v", err)
	}
	all, err := p.All()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range all {
		found = found || s.Key() == st.Key()
	}
	if !found {
		t.Errorf("All() misses self %+v", st.Key())
	}
}
