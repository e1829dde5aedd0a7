package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeConfigDir writes files (name relative to dir → content) in the
// order given, and returns the main config's path.
func writeConfigDir(t *testing.T, files ...[2]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		path := filepath.Join(dir, f[0])
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.toml")
}

func TestConfigDropInsApplyInLexicalOrder(t *testing.T) {
	path := writeConfigDir(t,
		// Written out of order: the names decide, not the creation order.
		[2]string{"config.d/20-late.toml", "[image]\nplatform = \"linux/arm64\"\n"},
		[2]string{"config.d/10-early.toml", "log_level = \"warn\"\n[image]\nplatform = \"linux/s390x\"\nmax_concurrent_downloads = 5\n"},
		[2]string{"config.d/README", "not = toml at all ["},
		[2]string{"config.d/30-not-toml.toml.bak", "log_level = \"error\"\n"},
		[2]string{"config.toml", "log_level = \"debug\"\nroot = \"/srv/cubby\"\n[image]\nno_progress_timeout = \"1m\"\n"},
	)
	cs, err := loadConfigSet(path, true, map[string]string{"listen": "/run/other.sock"})
	if err != nil {
		t.Fatal(err)
	}
	c := cs.cfg
	if c.LogLevel != "warn" || c.Root != "/srv/cubby" || c.Image.Platform != "linux/arm64" ||
		c.Image.MaxConcurrentDownloads != 5 || c.Image.NoProgressTimeout != time.Minute || c.Listen != "/run/other.sock" {
		t.Errorf("merged config %+v", c)
	}
	if c.State != defaultConfig().State {
		t.Errorf("state %q, want the default", c.State)
	}
	dir := filepath.Dir(path)
	want := []string{path, filepath.Join(dir, "config.d/10-early.toml"), filepath.Join(dir, "config.d/20-late.toml")}
	if strings.Join(cs.files, " ") != strings.Join(want, " ") {
		t.Errorf("files %q, want %q", cs.files, want)
	}
	for key, src := range map[string]string{
		"log_level":                      want[1] + ":1",
		"root":                           want[0] + ":2",
		"image.platform":                 want[2] + ":2",
		"image.max_concurrent_downloads": want[1] + ":4",
		"listen":                         "--listen flag",
		"state":                          "default",
	} {
		file, line := cs.where(key)
		got := file
		if line > 0 {
			got += ":" + strconv.Itoa(line)
		}
		if got != src {
			t.Errorf("%s comes from %q, want %q", key, got, src)
		}
	}
}

func TestConfigMainFileMayBeMissing(t *testing.T) {
	path := writeConfigDir(t, [2]string{"config.d/10.toml", "log_level = \"error\"\n"})
	cs, err := loadConfigSet(path, false, nil)
	if err != nil {
		t.Fatalf("missing default config: %v", err)
	}
	if cs.cfg.LogLevel != "error" {
		t.Errorf("drop-in without a main file not applied: log_level %q", cs.cfg.LogLevel)
	}
	if _, err := loadConfigSet(path, true, nil); err == nil || !strings.Contains(err.Error(), "config.toml") {
		t.Errorf("missing --config: err = %v, want one naming the file", err)
	}
}

// wantConfigErrors checks that err lists exactly want, as "file:line: key:".
func wantConfigErrors(t *testing.T, err error, dir string, want ...string) {
	t.Helper()
	var errs configErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want configErrors", err)
	}
	var got []string
	for _, e := range errs {
		s := e.Error()
		s = strings.TrimPrefix(s, dir+"/")
		got = append(got, s)
	}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s\nwant prefixes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestConfigUnknownKeysNameFileLineAndKey(t *testing.T) {
	path := writeConfigDir(t,
		[2]string{"config.toml", "# typo\nlog_levle = \"debug\"\n[image]\n  platfrom = \"linux/arm64\"\n"},
		[2]string{"config.d/10.toml", "[bogus]\nx = 1\ny = 2\n[image.registries.\"r.example\"]\nmirrors = [\"http://m\"]\nskip = true\n"},
	)
	_, err := loadConfigSet(path, true, nil)
	wantConfigErrors(t, err, filepath.Dir(path),
		"config.toml:2: log_levle: unknown key",
		"config.toml:4: image.platfrom: unknown key",
		"config.d/10.toml:1: bogus: unknown key", // its keys are not listed again
		"config.d/10.toml:6: image.registries.\"r.example\".skip: unknown key",
	)
}

func TestConfigBadValuesNameFileAndLine(t *testing.T) {
	path := writeConfigDir(t,
		[2]string{"config.toml", "log_level = \"loud\"\n\n[image]\nmax_concurrent_downloads = \"three\"\nno_progress_timeout = \"soon\"\nplatform = \"linux/arm64\"\n"},
		[2]string{"config.d/10.toml", "root = \"relative/dir\"\n[streaming]\naddress = \"no-port\"\n[cni]\ndefault_subnet = \"10.1.0.0\"\n"},
		[2]string{"config.d/20.toml", "[cni\n"},
	)
	cs, err := loadConfigSet(path, true, map[string]string{"state": "run/cubby"})
	wantConfigErrors(t, err, filepath.Dir(path),
		"config.toml:1: log_level: \"loud\" is not",
		"config.toml:4: image.max_concurrent_downloads: incompatible types",
		"config.toml:5: image.no_progress_timeout:",
		"config.d/10.toml:1: root: \"relative/dir\" is not an absolute path",
		"config.d/10.toml:3: streaming.address: \"no-port\" is not host:port",
		"config.d/10.toml:5: cni.default_subnet: \"10.1.0.0\" is not a subnet",
		"config.d/20.toml:2: expected", // the toml package counts the newline that ends the header
		"--state flag: state: \"run/cubby\" is not an absolute path",
	)
	// The good values of a file with bad ones still apply.
	if cs.cfg.Image.Platform != "linux/arm64" {
		t.Errorf("platform %q: the rest of a file with a bad value was not applied", cs.cfg.Image.Platform)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if ps := validateConfig(defaultConfig()); len(ps) > 0 {
		t.Errorf("defaults invalid: %v", ps)
	}
}

func TestPrintConfigNamesSources(t *testing.T) {
	path := writeConfigDir(t,
		[2]string{"config.toml", "log_level = \"debug\"\n"},
		[2]string{"config.d/10.toml", "[cni]\ndefault_subnet = \"10.99.0.0/16\"\n[image.registries.\"registry.k8s.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n"},
	)
	cs, err := loadConfigSet(path, true, map[string]string{"root": "/srv/cubby"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := cs.print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	dir := filepath.Dir(path)
	for _, want := range []string{
		`log_level = "debug"  # ` + path + ":1\n",
		`root = "/srv/cubby"  # --root flag` + "\n",
		`state = "/run/cubby"  # default` + "\n",
		`default_subnet = "10.99.0.0/16"  # ` + dir + "/config.d/10.toml:2\n",
		`mirrors = ["http://127.0.0.1:5000"]  # ` + dir + "/config.d/10.toml:4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}
	// What it prints loads again to the same configuration.
	again := writeConfigDir(t, [2]string{"config.toml", out})
	cs2, err := loadConfigSet(again, true, nil)
	if err != nil {
		t.Fatalf("printed config does not load: %v", err)
	}
	if cs2.cfg.Root != "/srv/cubby" || cs2.cfg.CNI.DefaultSubnet != "10.99.0.0/16" || len(cs2.cfg.Image.Registries["registry.k8s.io"].Mirrors) != 1 {
		t.Errorf("printed config loads as %+v", cs2.cfg)
	}
}
