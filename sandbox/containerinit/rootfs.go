package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfs is the container's root directory seen from the host side of the
// new mount namespace, before pivot_root. Every path inside it is resolved
// inside it: image content is hostile, and a symlink such as /proc -> /
// must never send a mount onto the host.
type rootfs struct {
	path  string   // host path of the root
	dir   *os.File // O_PATH handle on the root, opened after it was bind-mounted
	procs []string // in-root paths where a procfs was mounted
}

// bindRootfs bind-mounts path onto itself (so it is a mountpoint pivot_root
// accepts, with every submount) and opens a handle on the result.
func bindRootfs(path string) (*rootfs, error) {
	if err := mount(path, path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, err
	}
	dir, err := os.OpenFile(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %q: %w", path, err)
	}
	return &rootfs{path: path, dir: dir}, nil
}

func (r *rootfs) close() { r.dir.Close() }

// resolve returns unsafePath with every symlink resolved inside the root, as
// a clean absolute in-root path. Dangling links resolve to where their
// target would be, still inside the root.
func (r *rootfs) resolve(unsafePath string) (string, error) {
	full, err := securejoin.SecureJoin(r.path, unsafePath)
	if err != nil {
		return "", fmt.Errorf("resolve %q in rootfs: %w", unsafePath, err)
	}
	rel, err := filepath.Rel(r.path, full)
	if err != nil {
		return "", fmt.Errorf("resolve %q in rootfs: %w", unsafePath, err)
	}
	return filepath.Join("/", rel), nil
}

// open returns an O_PATH handle on the in-root path p.
func (r *rootfs) open(p string) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(r.dir, p)
	if err != nil {
		return nil, fmt.Errorf("open %q in rootfs: %w", p, err)
	}
	return f, nil
}

// mkdirAll creates the in-root directory p and its parents, race-free, and
// returns an O_PATH handle on it.
func (r *rootfs) mkdirAll(p string) (*os.File, error) {
	f, err := pathrs.MkdirAllHandle(r.dir, p, 0o755)
	if err != nil {
		return nil, fmt.Errorf("create directory %q in rootfs: %w", p, err)
	}
	return f, nil
}

// mkfile makes sure a non-directory exists at the in-root path p (creating
// an empty regular file and its parents if needed) and returns a handle.
func (r *rootfs) mkfile(p string) (*os.File, error) {
	resolved, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	if f, err := r.open(resolved); err == nil {
		return f, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	parent, err := r.mkdirAll(filepath.Dir(resolved))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(resolved),
		unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EEXIST {
		return nil, fmt.Errorf("create file %q in rootfs: %w", resolved, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return r.open(resolved)
}

// fdPath is the magic link through which a syscall reaches the exact file
// behind f, whatever happens to the path it was opened by.
func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// mountAt runs mount(2) with the in-root path p (re-opened for every call,
// so that it sees mounts made on it earlier) as the target.
func (r *rootfs) mountAt(source, p, fstype string, flags uintptr, data string) error {
	f, err := r.open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return mount(source, fdPath(f), p, fstype, flags, data)
}

// mountSpec applies one OCI mount under the root. Its target is resolved
// inside the root once, into a handle, and the mount goes onto that handle.
func (r *rootfs) mountSpec(m specs.Mount) error {
	if m.Destination == "" {
		return fmt.Errorf("%w: mount without destination", ErrInvalidSpec)
	}
	dest, err := r.resolve(m.Destination)
	if err != nil {
		return err
	}
	mo := parseMountOptions(m.Options)
	if m.Type == "bind" {
		mo.bind = true
		mo.flags |= unix.MS_BIND
	}
	if err := r.checkProcTarget(dest, m.Type); err != nil {
		return err
	}
	switch {
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return r.mountCgroups(dest, mo)
	case mo.bind:
		return r.bindMount(m.Source, dest, mo)
	}

	target, err := r.mkdirAll(dest)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := r.checkProcHandle(target, dest, m.Type); err != nil {
		return err
	}
	if err := mount(m.Source, fdPath(target), dest, m.Type, mo.flags, mo.data); err != nil {
		return err
	}
	if m.Type == "proc" {
		r.procs = append(r.procs, dest)
	}
	return r.setPropagation(dest, mo.propagation)
}

// procFiles are the files under /proc that a bind mount may cover (what
// lxcfs serves, as runc allows); nothing else is mounted over a procfs.
var procFiles = []string{
	"cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
}

// checkProcTarget refuses a mount that would cover the container's procfs
// or a part of it (CVE-2019-19921, CVE-2023-27561): the init stage and the
// container rely on /proc being the kernel's. Targets are resolved, so a
// symlink in the image or in a volume that leads to /proc is caught as
// well.
func (r *rootfs) checkProcTarget(dest, fstype string) error {
	for _, p := range r.procs {
		rel, err := filepath.Rel(p, dest)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if fstype != "proc" && !slices.Contains(procFiles, rel) {
			return fmt.Errorf("%w: mount target %q is on the container's procfs at %q", ErrInvalidSpec, dest, p)
		}
	}
	return nil
}

// checkProcHandle is checkProcTarget for what the target handle really
// is: a sibling that swapped a directory of a shared volume for a symlink
// to /proc after dest was resolved still cannot bring a mount onto the
// procfs.
func (r *rootfs) checkProcHandle(target *os.File, dest, fstype string) error {
	if fstype == "proc" {
		return nil
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(target.Fd()), &sfs); err != nil {
		return fmt.Errorf("statfs mount target %q: %w", dest, err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return nil
	}
	if slices.Contains(r.procs, filepath.Dir(dest)) && slices.Contains(procFiles, filepath.Base(dest)) {
		return nil
	}
	return fmt.Errorf("%w: mount target %q is on a procfs", ErrInvalidSpec, dest)
}

// bindMount binds the host path source onto the in-root path dest. The
// source is opened once (a pinned one without following any symlink and
// checked to be what cubbyd saw at create time, openBindSource); its
// clone gets the options' flags
// (ro, nosuid, rro, ...) while still detached and is then moved onto the
// target's handle, so the container never sees it otherwise.
func (r *rootfs) bindMount(source, dest string, mo mountOptions) error {
	var want *sourceID
	if mo.sourceID != "" {
		id, err := parseSourceID(mo.sourceID)
		if err != nil {
			return err
		}
		want = &id
	}
	src, err := openBindSource(source, want)
	if err != nil {
		return err
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("stat bind mount source %q: %w", source, err)
	}
	var target *os.File
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		target, err = r.mkdirAll(dest)
	} else {
		target, err = r.mkfile(dest)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	if err := r.checkProcHandle(target, dest, "bind"); err != nil {
		return err
	}
	tree, err := cloneMount(src, mo.flags&unix.MS_REC != 0)
	if err != nil {
		return err
	}
	defer tree.Close()
	if err := setMountAttr(tree, mo.flags&remountFlags, false); err != nil {
		return err
	}
	if mo.recursiveRO {
		if err := setMountAttr(tree, unix.MS_RDONLY, true); err != nil {
			return err
		}
	}
	if err := attachMount(tree, target, dest); err != nil {
		return err
	}
	return setPropagationFd(tree, mo.propagation)
}

func (r *rootfs) setPropagation(dest string, propagation uintptr) error {
	if propagation == 0 {
		return nil
	}
	return r.mountAt("", dest, "", propagation, "")
}

// mountPointOf returns the mount point of the mount that holds path (the
// deepest mount point above it, path included), from this mount
// namespace's mountinfo.
func mountPointOf(path string) (string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		return "", fmt.Errorf("find the mount of %q: %w", path, err)
	}
	best := ""
	for _, m := range mounts {
		if len(m.Mountpoint) >= len(best) {
			best = m.Mountpoint
		}
	}
	if best == "" {
		return "", fmt.Errorf("find the mount of %q: none holds it", path)
	}
	return best, nil
}
