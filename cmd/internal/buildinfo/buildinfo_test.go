package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name            string
		ldVer, ldCommit string
		settings        []debug.BuildSetting
		want            Info
	}{
		{"ldflags win", "v1.2.0-3-gabc", "abcdef", vcs, Info{"v1.2.0-3-gabc", "abcdef", "go1.x"}},
		{"vcs fallback", "", "", vcs, Info{"dev-0123456789ab-dirty", "0123456789abcdef0123", "go1.x"}},
		{"clean vcs", "", "", vcs[:1], Info{"dev-0123456789ab", "0123456789abcdef0123", "go1.x"}},
		{"nothing", "", "", nil, Info{"dev", "unknown", "go1.x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.ldVer, tc.ldCommit, tc.settings, "go1.x"); got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGetNamesGoVersion(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.GoVersion, "go") || i.Version == "" || i.Commit == "" {
		t.Errorf("Get() = %+v", i)
	}
	if s := i.String(); !strings.Contains(s, i.GoVersion) || !strings.Contains(s, i.Commit) {
		t.Errorf("String() = %q", s)
	}
}
