package rootfs

import (
	"strings"

	"github.com/moby/sys/mountinfo"
)

// mountsWhere lists the mounts of this mount namespace that keep accepts,
// in mountinfo order (a mount stacked on another comes after it).
func mountsWhere(keep func(*mountinfo.Info) bool) ([]*mountinfo.Info, error) {
	return mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) { return !keep(m), false })
}

// hasOption reports whether the comma-separated options contain opt.
func hasOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
