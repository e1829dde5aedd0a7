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

// cgroupTable is what the mount table says about the host's cgroups.
type cgroupTable struct {
	mounts []cgroupMount // the cgroup and cgroup2 mounts, in mount order
	// unified is true when hostCgroupRoot itself is a cgroup2 mount (a
	// pure v2 host); a v1 or hybrid host has a tmpfs there holding the
	// v1 hierarchies (and, hybrid, a cgroup2 one at "unified").
	unified bool
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
// dest that looks as runc makes it on the same host (runc mounts fresh
// cgroup filesystems in the container's cgroup namespace; we bind the
// container's cgroup directories before unsharing it, which shows the same
// tree):
//
//   - pure v2: the container's cgroup2 directory is bound onto dest;
//   - v1 and hybrid: dest is a tmpfs holding one bind per v1 hierarchy
//     (cpu, memory, ..., systemd), each of the container's own cgroup
//     directory, with the host's aliases for co-mounted controllers. A
//     hybrid host's cgroup2 hierarchy ("unified") is left out, as runc
//     does: a container that sees a cgroup2 mount takes itself to be on
//     v2 and looks for memory.max (the Kubernetes e2e framework does).
func (r *rootfs) mountCgroups(dest string, mo mountOptions) error {
	unified, binds, err := ownCgroupBinds()
	if err != nil {
		return err
	}
	flags := mo.flags & remountFlags
	if unified && len(binds) == 1 {
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

// ownCgroupBinds reads our mount table and cgroup membership, and tells
// whether the host is pure v2. It runs after the parent put us into the
// container's cgroups.
func ownCgroupBinds() (bool, []cgroupBind, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, nil, err
	}
	defer mi.Close()
	table, err := parseCgroupMounts(mi)
	if err != nil {
		return false, nil, fmt.Errorf("parse /proc/self/mountinfo: %w", err)
	}
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return false, nil, err
	}
	defer pc.Close()
	cgroups, err := parseProcCgroup(pc)
	if err != nil {
		return false, nil, fmt.Errorf("parse /proc/self/cgroup: %w", err)
	}
	return table.unified, cgroupBinds(table, cgroups), nil
}

// cgroupBinds pairs each hierarchy the container sees with our cgroup in
// it: on a pure v2 host the cgroup2 mount at hostCgroupRoot, otherwise
// every v1 hierarchy mounted under hostCgroupRoot (not the cgroup2 one of
// a hybrid host). Hierarchies we are not in, or whose mount does not show
// our cgroup, are left out.
func cgroupBinds(table cgroupTable, cgroups []procCgroup) []cgroupBind {
	var binds []cgroupBind
	for _, m := range table.mounts {
		name, err := filepath.Rel(hostCgroupRoot, m.mountpoint)
		if err != nil || name == ".." || strings.HasPrefix(name, "../") {
			continue
		}
		if name == "." {
			name = ""
		}
		if !table.shows(m, name) {
			continue
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

// shows tells whether a container's /sys/fs/cgroup shows the hierarchy
// that m mounts at hostCgroupRoot/name: on a pure v2 host the cgroup2
// mount at the root only, otherwise the v1 hierarchies below it only.
func (t cgroupTable) shows(m cgroupMount, name string) bool {
	if t.unified {
		return m.fstype == "cgroup2" && name == ""
	}
	return m.fstype == "cgroup" && name != ""
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
// file (proc(5)), parsed by github.com/moby/sys/mountinfo, and whether the
// topmost mount at hostCgroupRoot is cgroup2.
func parseCgroupMounts(r io.Reader) (cgroupTable, error) {
	var top string // fstype of the last mount at hostCgroupRoot
	filter := func(m *mountinfo.Info) (skip, stop bool) {
		if m.Mountpoint == hostCgroupRoot {
			top = m.FSType
		}
		return m.FSType != "cgroup" && m.FSType != "cgroup2", false
	}
	infos, err := mountinfo.GetMountsFromReader(r, filter)
	if err != nil {
		return cgroupTable{}, err
	}
	table := cgroupTable{mounts: make([]cgroupMount, 0, len(infos)), unified: top == "cgroup2"}
	for _, m := range infos {
		table.mounts = append(table.mounts, cgroupMount{
			root:       m.Root,
			mountpoint: m.Mountpoint,
			fstype:     m.FSType,
			superOpts:  strings.Split(m.VFSOptions, ","),
		})
	}
	return table, nil
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
