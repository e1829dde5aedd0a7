package critest

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// idScript prints the process's identity as `id` sees it.
const idScript = `echo "uid=$(id -u) gid=$(id -g) user=$(id -nu)"; echo "groups=$(id -G)"; echo "home=$HOME"`

// TestSecurityContextUser checks run_as_user, run_as_username,
// run_as_group, supplemental_groups and both supplemental_groups_policy
// values from inside the container, and ContainerStatus.user.
func TestSecurityContextUser(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("user", logDir)
	podID := runPod(t, env, pod)

	resp, err := env.RuntimeService().Status(t.Context(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !resp.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Errorf("Status does not advertise supplemental_groups_policy")
	}

	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	for _, tc := range []struct {
		name   string
		set    func(*runtimeapi.LinuxContainerSecurityContext)
		id     string // the `id` line
		groups []int64
		home   string
	}{
		{name: "image-default", set: func(*runtimeapi.LinuxContainerSecurityContext) {},
			id: "uid=0 gid=0 user=root", groups: []int64{0}, home: "/root"},
		// The image's /etc/group makes cubby (1000) a member of 2000.
		{name: "run-as-user-merge", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUser = i64(1000)
			sc.SupplementalGroups = []int64{1234, 5678}
		}, id: "uid=1000 gid=1000 user=cubby", groups: []int64{1000, 1234, 2000, 5678}, home: "/tmp"},
		{name: "run-as-user-strict", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUser = i64(1000)
			sc.SupplementalGroups = []int64{1234}
			sc.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
		}, id: "uid=1000 gid=1000 user=cubby", groups: []int64{1000, 1234}, home: "/tmp"},
		{name: "run-as-username", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUsername = "cubby"
		}, id: "uid=1000 gid=1000 user=cubby", groups: []int64{1000, 2000}, home: "/tmp"},
		{name: "run-as-group", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUser = i64(1000)
			sc.RunAsGroup = i64(3000)
		}, id: "uid=1000 gid=3000 user=cubby", groups: []int64{2000, 3000}, home: "/tmp"},
		{name: "uid-not-in-image", set: func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUser = i64(4242)
		}, id: "uid=4242 gid=0 user=4242", groups: []int64{0}, home: "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("user-"+tc.name, reg.Ref, "")
			tc.set(cfg.Linux.SecurityContext)
			st, lines := runScript(t, env, podID, pod, logDir, cfg, idScript)
			if !slices.Contains(lines, tc.id) {
				t.Errorf("output %q lacks %q", lines, tc.id)
			}
			gotGroups, _ := lineWithPrefix(lines, "groups=")
			if want := joinInts(tc.groups); sortedFields(gotGroups) != want {
				t.Errorf("id -G = %q, want %q", gotGroups, want)
			}
			if home, _ := lineWithPrefix(lines, "home="); home != tc.home {
				t.Errorf("HOME=%q, want %q", home, tc.home)
			}
			u := st.GetUser().GetLinux()
			want := strings.Fields(tc.id)
			if u == nil || "uid="+itoa(int(u.GetUid())) != want[0] || "gid="+itoa(int(u.GetGid())) != want[1] {
				t.Errorf("ContainerStatus.user = %v, want %s %s", st.GetUser(), want[0], want[1])
			}
			sg := slices.Clone(u.GetSupplementalGroups())
			slices.Sort(sg)
			if !slices.Equal(sg, tc.groups) {
				t.Errorf("ContainerStatus.user supplemental groups %v, want %v", sg, tc.groups)
			}
		})
	}

	for _, tc := range []struct {
		name string
		set  func(*runtimeapi.LinuxContainerSecurityContext)
	}{
		{name: "run-as-group-alone", set: func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsGroup = i64(3000) }},
		{name: "unknown-username", set: func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsUsername = "no-such-user" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := containerConfig("bad-"+tc.name, reg.Ref, "", "true")
			tc.set(cfg.Linux.SecurityContext)
			resp, err := env.RuntimeService().CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if err == nil {
				t.Fatalf("CreateContainer succeeded (container %q)", resp.GetContainerId())
			}
		})
	}
}

// joinInts and sortedFields compare group lists whatever their order.
func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, " ")
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	slices.SortFunc(f, func(a, b string) int {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return int(x - y)
	})
	return strings.Join(f, " ")
}
