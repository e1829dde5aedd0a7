package contrib

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// installer runs the repository's `make install` and `make uninstall` into
// a temporary DESTDIR, with binaries built into a temporary BIN.
type installer struct {
	repo, bin, destdir, prefix string
}

func newInstaller(t *testing.T) *installer {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make: %v", err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	return &installer{repo: repo, bin: filepath.Join(tmp, "bin"), destdir: filepath.Join(tmp, "root"), prefix: "/opt/cubby"}
}

func (in *installer) make(t *testing.T, target string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", in.repo, target, "BIN="+in.bin, "DESTDIR="+in.destdir, "PREFIX="+in.prefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
	return string(out)
}

// path is name inside DESTDIR.
func (in *installer) path(name string) string { return filepath.Join(in.destdir, name) }

// files are what `make install` puts under DESTDIR, with their modes.
func (in *installer) files() map[string]os.FileMode {
	return map[string]os.FileMode{
		in.prefix + "/bin/cubbyd":                  0o755,
		in.prefix + "/bin/cubby-pod":               0o755,
		in.prefix + "/bin/cubby":                   0o755,
		"/lib/systemd/system/cubby.service":        0o644,
		"/etc/cubby/config.toml":                   0o644,
		in.prefix + "/share/doc/cubby/crictl.yaml": 0o644,
	}
}

func TestInstallAndUninstall(t *testing.T) {
	in := newInstaller(t)
	in.make(t, "install")
	for name, mode := range in.files() {
		fi, err := os.Stat(in.path(name))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(in.path("/etc/cubby/config.d")); err != nil || !fi.IsDir() {
		t.Errorf("no config.d drop-in directory: %v", err)
	}
	unit, err := os.ReadFile(in.path("/lib/systemd/system/cubby.service"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nExecStart=" + in.prefix + "/bin/cubbyd "; !strings.Contains(string(unit), want) {
		t.Errorf("installed unit lacks %q:\n%s", want, unit)
	}
	checkDefaultConfig(t, in.path("/etc/cubby/config.toml"))
	out, err := exec.Command(in.path(in.prefix+"/bin/cubbyd"), "--config", in.path("/etc/cubby/config.toml"), "--config-check").CombinedOutput()
	if err != nil {
		t.Errorf("installed cubbyd --config-check on the installed config: %v\n%s", err, out)
	}

	in.make(t, "uninstall")
	for name := range in.files() {
		if _, err := os.Stat(in.path(name)); !os.IsNotExist(err) {
			t.Errorf("%s left after uninstall (%v)", name, err)
		}
	}
	if _, err := os.Stat(in.path("/etc/cubby")); !os.IsNotExist(err) {
		t.Errorf("/etc/cubby left after uninstall (%v)", err)
	}
}

// checkDefaultConfig checks that the installed config documents every
// setting but sets none: each is a comment, so later defaults still apply.
func checkDefaultConfig(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if _, err := toml.Decode(string(b), &v); err != nil {
		t.Fatalf("installed config is not TOML: %v", err)
	}
	if len(v) != 0 {
		t.Errorf("installed config sets %v; want every setting commented out", v)
	}
	for _, key := range []string{"# root = ", "# listen = ", "[image]", "# [cni]"} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("installed config does not show %q", key)
		}
	}
}

func TestInstallKeepsAnOperatorsConfig(t *testing.T) {
	in := newInstaller(t)
	in.make(t, "install")
	config := in.path("/etc/cubby/config.toml")
	mine := []byte("log_level = \"debug\"\n")
	if err := os.WriteFile(config, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	in.make(t, "install") // an upgrade
	if b, _ := os.ReadFile(config); !bytes.Equal(b, mine) {
		t.Errorf("install replaced the operator's config with\n%s", b)
	}
	in.make(t, "uninstall")
	if b, _ := os.ReadFile(config); !bytes.Equal(b, mine) {
		t.Errorf("uninstall removed or changed the operator's config: %q", b)
	}
	if _, err := os.Stat(in.path(in.prefix + "/bin/cubbyd")); !os.IsNotExist(err) {
		t.Errorf("cubbyd left after uninstall (%v)", err)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the installed unit, with
// its ExecStart pointing into DESTDIR so that the binary it names exists.
// verify exits 0 on unknown keys and bad values too, so any warning about
// the unit fails the test.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("no systemd-analyze (Debian package systemd): %v", err)
	}
	in := newInstaller(t)
	in.make(t, "install")
	unit, err := os.ReadFile(in.path("/lib/systemd/system/cubby.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit = bytes.ReplaceAll(unit, []byte("="+in.prefix+"/bin/"), []byte("="+in.path(in.prefix+"/bin")+"/"))
	path := filepath.Join(t.TempDir(), "cubby.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("cubby.service")) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "Delegate=yes", "KillMode=process", "Restart=always", "LimitNOFILE=1048576",
		"TasksMax=infinity", "OOMScoreAdjust=-999", "WatchdogSec=", "Before=kubelet.service"} {
		if !bytes.Contains(unit, []byte("\n"+want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
}
