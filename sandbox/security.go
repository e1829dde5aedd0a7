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
	return devicesUnder("/dev")
}

// devicesUnder lists the device nodes below dir, skipping devSkip.
func devicesUnder(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
		dev, ok, err := deviceAt(path)
		if err != nil || !ok {
			return err
		}
		out = append(out, dev)
		return nil
	})
	return out, err
}

// deviceAt describes the device node at path; ok is false when it is not a
// character or block device (or is gone).
func deviceAt(path string) (dev specs.LinuxDevice, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return dev, false, nil
		}
		return dev, false, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return dev, false, nil
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: path, Type: typ,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true, nil
}

// Device is a host device a container asks for (CRI Device).
type Device struct {
	HostPath, ContainerPath, Permissions string
}

// ErrBadDevice means a requested device cannot be given: missing, not a
// device, or bad permissions.
var ErrBadDevice = errors.New("bad device")

// ResolveDevices turns requested host devices into the device nodes the
// container gets and the devices cgroup rules that allow them. A host path
// that is a directory gives every device below it, at the same place under
// the container path (as containerd does).
func ResolveDevices(reqs []Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var nodes []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, r := range reqs {
		perms := r.Permissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, nil, fmt.Errorf("%w: device %q: permissions %q: want a combination of r, w and m", ErrBadDevice, r.HostPath, r.Permissions)
		}
		if !filepath.IsAbs(r.HostPath) || (r.ContainerPath != "" && !filepath.IsAbs(r.ContainerPath)) {
			return nil, nil, fmt.Errorf("%w: device %q -> %q: paths must be absolute", ErrBadDevice, r.HostPath, r.ContainerPath)
		}
		dest := r.ContainerPath
		if dest == "" {
			dest = r.HostPath
		}
		host, err := filepath.EvalSymlinks(r.HostPath)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: device %q: %v", ErrBadDevice, r.HostPath, err)
		}
		st, err := os.Stat(host)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: device %q: %v", ErrBadDevice, r.HostPath, err)
		}
		var found []specs.LinuxDevice
		if st.IsDir() {
			all, err := devicesUnder(host)
			if err != nil {
				return nil, nil, fmt.Errorf("device directory %q: %w", r.HostPath, err)
			}
			for _, d := range all {
				rel, _ := filepath.Rel(host, d.Path)
				d.Path = filepath.Join(dest, rel)
				found = append(found, d)
			}
		} else {
			d, ok, err := deviceAt(host)
			if err != nil {
				return nil, nil, fmt.Errorf("device %q: %w", r.HostPath, err)
			}
			if !ok {
				return nil, nil, fmt.Errorf("%w: %q is not a device", ErrBadDevice, r.HostPath)
			}
			d.Path = dest
			found = append(found, d)
		}
		for _, d := range found {
			major, minor := d.Major, d.Minor
			nodes = append(nodes, d)
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms})
		}
	}
	return nodes, rules, nil
}
