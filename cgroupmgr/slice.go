package cgroupmgr

import (
	"fmt"
	"strings"
)

// ExpandSlice turns a systemd slice name, as kubelet's systemd cgroup
// driver sends it, into the cgroupfs path systemd would give it: every
// dash-separated prefix is a parent slice, so
// "kubepods-burstable-pod1.slice" is
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice".
// "-.slice" is the root. Anything else without the ".slice" suffix is
// returned unchanged (already a cgroupfs path).
func ExpandSlice(name string) (string, error) {
	base, ok := strings.CutSuffix(name, ".slice")
	if !ok {
		return name, nil
	}
	if base == "-" {
		return "/", nil
	}
	if base == "" || strings.Contains(base, "/") {
		return "", fmt.Errorf("%w: %q is not a systemd slice name", ErrInvalidPath, name)
	}
	var path, prefix strings.Builder
	for i, part := range strings.Split(base, "-") {
		if part == "" {
			return "", fmt.Errorf("%w: slice name %q has an empty part", ErrInvalidPath, name)
		}
		if i > 0 {
			prefix.WriteByte('-')
		}
		prefix.WriteString(part)
		path.WriteString("/" + prefix.String() + ".slice")
	}
	return path.String(), nil
}
