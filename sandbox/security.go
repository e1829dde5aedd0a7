package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// KnownCapabilities lists, as OCI names ("CAP_CHOWN"), every capability
// the kernel and the capability library know: the names a request may use.
func KnownCapabilities() []string {
	list, err := capability.ListSupported()
	if err != nil {
		// cap_last_cap unreadable: fall back to what the library knows.
		list = capability.ListKnown()
	}
	return capNames(list)
}

// CurrentCapabilities lists the capabilities this process (cubbyd) holds
// in its effective set: what "ALL" and a privileged container get, as
// containerd grants them. A container cannot get more than the pod init
// that starts it, and that inherits cubbyd's.
func CurrentCapabilities() ([]string, error) {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	if err := caps.Load(); err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	known, err := capability.ListSupported()
	if err != nil {
		known = capability.ListKnown()
	}
	var have []capability.Cap
	for _, c := range known {
		if caps.Get(capability.EFFECTIVE, c) {
			have = append(have, c)
		}
	}
	return capNames(have), nil
}

func capNames(list []capability.Cap) []string {
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// devSkip are /dev entries a privileged container does not get from the
// host: the container has its own pts, shm and mqueue mounts and its own
// /dev/ptmx link to its pts.
var devSkip = []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/ptmx", "/dev/.lxc", "/dev/.lxd-mounts"}

// HostDevices lists the host's device nodes under /dev, as a privileged
// container gets them.
func HostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone while walking
			}
			return err
		}
		if slices.Contains(devSkip, path) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || d.Type()&fs.ModeDevice == 0 {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		typ := "c"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			typ = "b"
		} else if st.Mode&unix.S_IFMT != unix.S_IFCHR {
			return nil
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: path, Type: typ,
			Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
		return nil
	})
	return out, err
}
