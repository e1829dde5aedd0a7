package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cubby/cri/server"
)

// TestContainersConfig checks the [containers] defaults and that values
// which would bound nothing or name no profile are refused at start.
func TestContainersConfig(t *testing.T) {
	def := defaultConfig().Containers
	if def.MaxConcurrentExecs != server.DefaultMaxConcurrentExecs || def.PidsLimit != 0 || def.UnsetSeccompProfile != "" {
		t.Errorf("defaults %+v: want %d execs, no pids limit, no unset profile", def, server.DefaultMaxConcurrentExecs)
	}
	for _, tc := range []struct {
		toml string
		bad  string // in the error; "" for a good config
	}{
		{toml: "[containers]\nmax_concurrent_execs = 4\npids_limit = 1024\nunset_seccomp_profile = \"runtime/default\""},
		{toml: "[containers]\nunset_seccomp_profile = \"localhost//etc/cubby/seccomp.json\""},
		{toml: "[containers]\nmax_concurrent_execs = 0", bad: "max_concurrent_execs"},
		{toml: "[containers]\npids_limit = -1", bad: "pids_limit"},
		{toml: "[containers]\nunset_seccomp_profile = \"strict\"", bad: "unset_seccomp_profile"},
		{toml: "[containers]\nunset_seccomp_profile = \"localhost/relative.json\"", bad: "unset_seccomp_profile"},
	} {
		path := filepath.Join(t.TempDir(), "cubbyd.toml")
		if err := os.WriteFile(path, []byte(tc.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfigSet(path, true, nil)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v", tc.toml, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%q: err = %v, want one naming %s", tc.toml, err, tc.bad)
		}
	}
}
