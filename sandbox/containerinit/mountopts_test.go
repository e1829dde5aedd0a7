package containerinit

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		options []string
		want    mountOptions
	}{
		{"empty", nil, mountOptions{}},
		{"proc", []string{"nosuid", "noexec", "nodev"},
			mountOptions{flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV}},
		{"data is kept in order", []string{"nosuid", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			mountOptions{flags: unix.MS_NOSUID, data: "newinstance,ptmxmode=0666,mode=0620,gid=5"}},
		{"rbind ro", []string{"rbind", "ro"},
			mountOptions{flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, bind: true}},
		{"later option wins", []string{"ro", "rw", "nosuid", "suid"}, mountOptions{}},
		{"propagation is separate", []string{"bind", "rslave"},
			mountOptions{flags: unix.MS_BIND, propagation: unix.MS_SLAVE | unix.MS_REC, bind: true}},
		{"last propagation wins", []string{"rshared", "private"},
			mountOptions{propagation: unix.MS_PRIVATE}},
		{"defaults is no flag", []string{"defaults"}, mountOptions{}},
		{"source id is kept, x- options dropped", []string{"rbind", "x-cubby.source-id=2049:12", "x-other=1", "ro"},
			mountOptions{flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, bind: true, sourceID: "2049:12"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMountOptions(tc.options); got != tc.want {
				t.Errorf("parseMountOptions(%q) = %+v, want %+v", tc.options, got, tc.want)
			}
		})
	}
}

func TestPropagationFlag(t *testing.T) {
	if got, err := propagationFlag("rslave"); err != nil || got != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("propagationFlag(rslave) = %#x, %v", got, err)
	}
	if _, err := propagationFlag("sideways"); err == nil {
		t.Error("propagationFlag(sideways) succeeded")
	}
}

func TestStatfsToMountFlags(t *testing.T) {
	got := statfsToMountFlags(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_RELATIME)
	if want := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_RELATIME); got != want {
		t.Errorf("statfsToMountFlags = %#x, want %#x", got, want)
	}
}
