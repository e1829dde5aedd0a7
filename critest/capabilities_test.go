package critest

import (
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Capability numbers (linux/capability.h) the tests look for.
const (
	capChown          = 0
	capNetBindService = 10
	capNetAdmin       = 12
	capNetRaw         = 13
	capSysAdmin       = 21
)

// defaultCaps is the set containerd and Docker grant by default:
// CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const defaultCaps = 0x00000000a80425fb

// capsScript prints the capability sets of the process.
const capsScript = `grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status`

// capSets parses the Cap*: lines of /proc/self/status.
func capSets(t *testing.T, lines []string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, l := range lines {
		name, hex, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(name, "Cap") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", l, err)
		}
		out[name] = v
	}
	if len(out) != 5 {
		t.Fatalf("capability sets missing from %q", lines)
	}
	return out
}

// TestCapabilities checks the default capability set, add and drop
// (including ALL) and ambient capabilities of a non-root user, as the
// process sees them in /proc/self/status.
func TestCapabilities(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("caps", logDir)
	podID := runPod(t, env, pod)

	has := func(set uint64, c uint) bool { return set&(1<<c) != 0 }
	for _, tc := range []struct {
		name  string
		caps  *runtimeapi.Capability
		uid   *runtimeapi.Int64Value
		check func(t *testing.T, s map[string]uint64)
	}{
		{name: "default", check: func(t *testing.T, s map[string]uint64) {
			for _, set := range []string{"CapPrm", "CapEff", "CapBnd"} {
				if s[set] != defaultCaps {
					t.Errorf("%s = %016x, want %016x", set, s[set], uint64(defaultCaps))
				}
			}
			if s["CapInh"] != 0 || s["CapAmb"] != 0 {
				t.Errorf("CapInh %x CapAmb %x, want 0", s["CapInh"], s["CapAmb"])
			}
		}},
		{name: "add-drop", caps: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"NET_RAW", "CAP_CHOWN"}},
			check: func(t *testing.T, s map[string]uint64) {
				want := uint64(defaultCaps)&^(1<<capNetRaw|1<<capChown) | 1<<capNetAdmin
				if s["CapEff"] != want || s["CapBnd"] != want {
					t.Errorf("CapEff %016x CapBnd %016x, want %016x", s["CapEff"], s["CapBnd"], want)
				}
			}},
		{name: "drop-all", caps: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}},
			check: func(t *testing.T, s map[string]uint64) {
				if s["CapEff"] != 0 || s["CapBnd"] != 0 || s["CapPrm"] != 0 {
					t.Errorf("sets %x, want all zero", s)
				}
			}},
		{name: "add-all-drop-one", caps: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"SYS_ADMIN"}},
			check: func(t *testing.T, s map[string]uint64) {
				if !has(s["CapEff"], capNetAdmin) || has(s["CapEff"], capSysAdmin) || !has(s["CapBnd"], capNetAdmin) {
					t.Errorf("CapEff %016x CapBnd %016x: want everything but SYS_ADMIN", s["CapEff"], s["CapBnd"])
				}
			}},
		{name: "ambient-non-root", uid: &runtimeapi.Int64Value{Value: 1000},
			caps: &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}},
			check: func(t *testing.T, s map[string]uint64) {
				for _, set := range []string{"CapAmb", "CapEff", "CapPrm", "CapInh"} {
					if s[set] != 1<<capNetBindService {
						t.Errorf("%s = %016x, want just NET_BIND_SERVICE", set, s[set])
					}
				}
			}},
		{name: "non-root-without-ambient", uid: &runtimeapi.Int64Value{Value: 1000},
			check: func(t *testing.T, s map[string]uint64) {
				if s["CapEff"] != 0 || s["CapPrm"] != 0 || s["CapBnd"] != defaultCaps {
					t.Errorf("CapEff %x CapPrm %x CapBnd %x, want 0 0 default", s["CapEff"], s["CapPrm"], s["CapBnd"])
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("caps-"+tc.name, reg.Ref, "")
			cfg.Linux.SecurityContext.Capabilities = tc.caps
			cfg.Linux.SecurityContext.RunAsUser = tc.uid
			_, lines := runScript(t, env, podID, pod, logDir, cfg, capsScript)
			tc.check(t, capSets(t, lines))
		})
	}

	t.Run("unknown-capability", func(t *testing.T) {
		cfg := containerConfig("caps-unknown", reg.Ref, "", "true")
		cfg.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NOT_A_CAPABILITY"}}
		resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err == nil {
			t.Fatalf("CreateContainer with an unknown capability succeeded (container %q)", resp.GetContainerId())
		}
	})
}
