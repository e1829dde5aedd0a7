package framework

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Mount
		wantErr bool
	}{
		{
			name: "optional fields",
			in:   "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
			want: []Mount{{ID: 36, Root: "/mnt1", MountPoint: "/mnt2", FSType: "ext3", Source: "/dev/root", SuperOpts: "rw,errors=continue"}},
		},
		{
			name: "no optional fields and escaped space",
			in:   "40 1 0:50 / /tmp/a\\040b rw - tmpfs tmpfs rw\n",
			want: []Mount{{ID: 40, Root: "/", MountPoint: "/tmp/a b", FSType: "tmpfs", Source: "tmpfs", SuperOpts: "rw"}},
		},
		{
			name: "cgroup v1 hierarchy",
			in:   "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n",
			want: []Mount{{ID: 30, Root: "/", MountPoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Source: "cgroup", SuperOpts: "rw,memory"}},
		},
		{name: "empty", in: "", want: nil},
		{name: "no separator", in: "36 35 98:0 /mnt1 /mnt2 rw ext3 /dev/root rw\n", wantErr: true},
		{name: "bad id", in: "x 35 98:0 / /m rw - ext3 /dev/root rw\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMountinfo([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/back\134`: `/back\`,
		`/short\04`: `/short\04`,
		`/plain`:    "/plain",
	}
	for in, want := range tests {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnder(t *testing.T) {
	tests := []struct {
		path, dir string
		want      bool
	}{
		{"/tmp/x", "/tmp/x", true},
		{"/tmp/x/y", "/tmp/x", true},
		{"/tmp/x/y", "/tmp/x/", true},
		{"/tmp/xy", "/tmp/x", false},
		{"/tmp", "/tmp/x", false},
	}
	for _, tt := range tests {
		if got := under(tt.path, tt.dir); got != tt.want {
			t.Errorf("under(%q, %q) = %v, want %v", tt.path, tt.dir, got, tt.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0"
	tests := []struct {
		name      string
		in        string
		wantState string
		wantStart uint64
		wantErr   bool
	}{
		{name: "plain", in: "123 (sleep) S" + tail, wantState: "S", wantStart: 4242},
		{name: "comm with spaces and parens", in: "123 (a) b (c) Z" + tail, wantState: "Z", wantStart: 4242},
		{name: "truncated", in: "123 (sleep) S 1 2", wantErr: true},
		{name: "no comm", in: "garbage", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (got.state != tt.wantState || got.startTime != tt.wantStart) {
				t.Errorf("got %+v, want state %s start %d", got, tt.wantState, tt.wantStart)
			}
		})
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\tsleep\nNSpid:\t4711\t1\nPid:\t4711\n"
	if got, err := statusField(status, "NSpid"); err != nil || got != "4711\t1" {
		t.Errorf("NSpid = %q, %v", got, err)
	}
	if _, err := statusField(status, "Nope"); !errors.Is(err, ErrNoField) {
		t.Errorf("missing field: err = %v, want ErrNoField", err)
	}
}

func TestCgroupPath(t *testing.T) {
	hybrid := "12:memory:/critest-1/abc\n4:cpu,cpuacct:/critest-1/abc\n1:name=systemd:/user.slice\n0::/user.slice/x\n"
	tests := []struct {
		data, controller, want string
		wantErr                bool
	}{
		{hybrid, "memory", "/critest-1/abc", false},
		{hybrid, "cpuacct", "/critest-1/abc", false},
		{hybrid, "", "/user.slice/x", false},
		{"0::/pod/ctr\n", "", "/pod/ctr", false},
		{"0::/pod/ctr\n", "memory", "", true},
	}
	for _, tt := range tests {
		got, err := cgroupPath(tt.data, tt.controller)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("cgroupPath(%q, %q) = %q, %v; want %q", tt.data, tt.controller, got, err, tt.want)
		}
	}
}

func TestParseIPAddrs(t *testing.T) {
	out := "3: eth0    inet 10.88.0.2/16 brd 10.88.255.255 scope global eth0\\       valid_lft forever preferred_lft forever\n"
	if got := parseIPAddrs(out); !slices.Equal(got, []string{"10.88.0.2"}) {
		t.Errorf("got %q", got)
	}
	if got := parseIPAddrs(""); got != nil {
		t.Errorf("empty output: got %q", got)
	}
}

func TestParsePeerIndex(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"3: eth0@if12: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\\    link/ether 5a:...", 12, false},
		{"1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parsePeerIndex(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parsePeerIndex(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	ts := "2024-05-01T10:20:30.123456789Z"
	want := time.Date(2024, 5, 1, 10, 20, 30, 123456789, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    LogEntry
		wantErr bool
	}{
		{name: "full", in: ts + " stdout F critest-host", want: LogEntry{Time: want, Stream: "stdout", Content: "critest-host"}},
		{name: "partial stderr", in: ts + " stderr P abc", want: LogEntry{Time: want, Stream: "stderr", Partial: true, Content: "abc"}},
		{name: "empty content", in: ts + " stdout F ", want: LogEntry{Time: want, Stream: "stdout"}},
		{name: "content with spaces and NUL", in: ts + " stdout F sh\x00-c\x00a b", want: LogEntry{Time: want, Stream: "stdout", Content: "sh\x00-c\x00a b"}},
		{name: "bad stream", in: ts + " stdin F x", wantErr: true},
		{name: "bad tag", in: ts + " stdout X x", wantErr: true},
		{name: "bad time", in: "yesterday stdout F x", wantErr: true},
		{name: "too short", in: ts + " stdout", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLogLine(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadLogLine) {
					t.Fatalf("err = %v, want ErrBadLogLine", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(tt.want.Time) || got.Stream != tt.want.Stream || got.Partial != tt.want.Partial || got.Content != tt.want.Content {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLog(t *testing.T) {
	ts := "2024-05-01T10:20:30Z"
	in := ts + " stdout P hel\n" +
		ts + " stderr F oops\n" +
		ts + " stdout F lo\n" +
		ts + " stdout F 2\n" +
		ts + " stderr P cut \n" +
		ts + " stderr P off\n" +
		ts + " stdout P DONE\n" +
		ts + " stdout F unterminated"
	got, err := ParseLog([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Stream+":"+e.Content)
	}
	// Lines no F record ends come last, per stream.
	want := []string{"stderr:oops", "stdout:hello", "stdout:2", "stderr:cut off", "stdout:DONE"}
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
}

func TestParseVerboseInfo(t *testing.T) {
	tests := []struct {
		name      string
		info      map[string]string
		wantPid   int
		wantNetns string
		wantCg    string
		wantErr   bool
	}{
		{
			name:      "pod",
			info:      map[string]string{"info": `{"pid":42,"runtimeSpec":{"ociVersion":"1.2.0","linux":{"cgroupsPath":"/p/c","namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/x"}]}}}`},
			wantPid:   42,
			wantNetns: "/run/netns/x",
			wantCg:    "/p/c",
		},
		{name: "no spec", info: map[string]string{"info": `{"pid":7}`}, wantPid: 7},
		{name: "missing", info: map[string]string{}, wantErr: true},
		{name: "not json", info: map[string]string{"info": "{"}, wantErr: true},
		{name: "no pid", info: map[string]string{"info": `{"runtimeSpec":{}}`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVerboseInfo(tt.info)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Pid != tt.wantPid || got.NamespacePath("network") != tt.wantNetns || got.CgroupsPath() != tt.wantCg {
				t.Errorf("got pid %d netns %q cgroup %q", got.Pid, got.NamespacePath("network"), got.CgroupsPath())
			}
		})
	}
}
