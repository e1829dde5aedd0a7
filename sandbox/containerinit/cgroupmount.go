package containerinit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// hostCgroupRoot is where the host mounts its cgroup hierarchies.
const hostCgroupRoot = "/sys/fs/cgroup"

// cgroupMount is one cgroup hierarchy mounted in our mount namespace.
type cgroupMount struct {
	root       string // the hierarchy path shown at mountpoint
	mountpoint string
	fstype     string   // "cgroup" or "cgroup2"
	superOpts  []string // for v1, includes the controllers ("cpu", "name=systemd")
}

// procCgroup is one line of /proc/self/cgroup.
type procCgroup struct {
	controllers []string // empty for the v2 hierarchy
	path        string
}

// cgroupBind is one bind mount that gives the container its own cgroup: the
// host directory source shown at <dest>/name ("" for dest itself).
type cgroupBind struct {
	source string
	name   string
}

// mountCgroups gives the container a read-only view of its own cgroups at
// dest, without a cgroup namespace: on a pure v2 host the container's cgroup
// directory is bound onto dest; otherwise dest is a tmpfs holding one bind
// per hierarchy (cpu, memory, ..., unified), each of the container's own
// cgroup directory, the way /sys/fs/cgroup looks on the host.
func (r *rootfs) mountCgroups(dest string, mo mountOptions) error {
	binds, err := ownCgroupBinds()
	if err != nil {
		return err
	}
	flags := mo.flags & remountFlags
	if len(binds) == 1 && binds[0].name == "" {
		return r.bindMount(binds[0].source, dest, mountOptions{flags: flags | unix.MS_BIND})
	}

	target, err := r.mkdirAll(dest)
	if err != nil {
		return err
	}
	target.Close()
	const tmpfsFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := r.mountAt("tmpfs", dest, "tmpfs", tmpfsFlags, "mode=755"); err != nil {
		return err
	}
	for _, b := range binds {
		sub := filepath.Join(dest, b.name)
		if err := r.bindMount(b.source, sub, mountOptions{flags: flags | unix.MS_BIND}); err != nil {
			return err
		}
		if err := r.cgroupAliases(dest, b.name); err != nil {
			return err
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return r.mountAt("", dest, "", unix.MS_REMOUNT|unix.MS_RDONLY|tmpfsFlags, "mode=755")
	}
	return nil
}

// cgroupAliases adds the symlinks the host has for co-mounted controllers:
// "cpu" and "cpuacct" -> "cpu,cpuacct".
func (r *rootfs) cgroupAliases(dest, name string) error {
	parts := strings.Split(name, ",")
	if len(parts) < 2 {
		return nil
	}
	dir, err := r.open(dest)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, p := range parts {
		if err := unix.Symlinkat(name, int(dir.Fd()), p); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink %q to %q: %w", filepath.Join(dest, p), name, err)
		}
	}
	return nil
}

// ownCgroupBinds reads our mount table and cgroup membership. It runs after
// the parent put us into the container's cgroups.
func ownCgroupBinds() ([]cgroupBind, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	mounts, err := parseCgroupMounts(mi)
	if err != nil {
		return nil, fmt.Errorf("parse /proc/self/mountinfo: %w", err)
	}
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	cgroups, err := parseProcCgroup(pc)
	if err != nil {
		return nil, fmt.Errorf("parse /proc/self/cgroup: %w", err)
	}
	return cgroupBinds(mounts, cgroups), nil
}

// cgroupBinds pairs each hierarchy mounted under hostCgroupRoot with our
// cgroup in it. Hierarchies we are not in, or whose mount does not show our
// cgroup, are left out.
func cgroupBinds(mounts []cgroupMount, cgroups []procCgroup) []cgroupBind {
	var binds []cgroupBind
	for _, m := range mounts {
		name, err := filepath.Rel(hostCgroupRoot, m.mountpoint)
		if err != nil || name == ".." || strings.HasPrefix(name, "../") {
			continue
		}
		if name == "." {
			name = ""
		}
		for _, c := range cgroups {
			if !c.in(m) {
				continue
			}
			rel, ok := strings.CutPrefix(c.path, m.root)
			if !ok || (rel != "" && m.root != "/" && rel[0] != '/') {
				continue
			}
			binds = append(binds, cgroupBind{source: filepath.Join(m.mountpoint, rel), name: name})
			break
		}
	}
	return binds
}

// in reports whether c is the hierarchy mounted by m.
func (c procCgroup) in(m cgroupMount) bool {
	if m.fstype == "cgroup2" {
		return len(c.controllers) == 0
	}
	if len(c.controllers) == 0 {
		return false
	}
	for _, o := range m.superOpts {
		if o == c.controllers[0] {
			return true
		}
	}
	return false
}

// parseCgroupMounts returns the cgroup and cgroup2 mounts of a mountinfo
// file (proc(5)), parsed by github.com/moby/sys/mountinfo.
func parseCgroupMounts(r io.Reader) ([]cgroupMount, error) {
	infos, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	out := make([]cgroupMount, 0, len(infos))
	for _, m := range infos {
		out = append(out, cgroupMount{
			root:       m.Root,
			mountpoint: m.Mountpoint,
			fstype:     m.FSType,
			superOpts:  strings.Split(m.VFSOptions, ","),
		})
	}
	return out, nil
}

// parseProcCgroup parses /proc/<pid>/cgroup ("id:controllers:path" lines).
func parseProcCgroup(r io.Reader) ([]procCgroup, error) {
	var out []procCgroup
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed cgroup line %q", sc.Text())
		}
		var controllers []string
		if parts[1] != "" {
			controllers = strings.Split(parts[1], ",")
		}
		out = append(out, procCgroup{controllers: controllers, path: parts[2]})
	}
	return out, sc.Err()
}
