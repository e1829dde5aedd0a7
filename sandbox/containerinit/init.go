package containerinit

import (
	"fmt"
	"os"
	"runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Main is the container init stage. cubby-pod's main calls it when
// os.Args[1] == InitArg, in the child that Start forked. It never returns:
// it execve's the user command, or reports the failed step to the parent
// over the sync socket and exits with status 1.
func Main() {
	// capset, the bounding set, keepcaps, the ambient set and no_new_privs
	// are per-thread: do all of them, and the execve, on this one thread.
	// It is never unlocked.
	runtime.LockOSThread()

	// fd 3 was dup'ed in without O_CLOEXEC; set it so that execve closes it
	// and the parent sees EOF exactly when the user command is running.
	unix.CloseOnExec(syncFd)
	sock := os.NewFile(syncFd, "containerinit-sync")
	ip := &initProcess{sync: newSyncPipe(sock)}
	step, err := ip.run()
	_ = ip.sync.send(message{Type: msgError, Error: newInitError(step, err)})
	os.Exit(1)
}

// initProcess is the state of the init stage as it walks its steps.
type initProcess struct {
	sync    *syncPipe
	spec    *specs.Spec
	root    *rootfs // nil after pivot_root
	caps    capSets // parsed by the first step, so bad names fail before any mount
	seccomp *SeccompFilter
	exe     string // the resolved command
	// cwd is a handle on the working directory, made inside the rootfs
	// before pivot_root; nil in the exec stage.
	cwd *os.File
	// nulls are detached bind mounts of the host's /dev/null, one per
	// masked path, cloned before pivot_root from a verified handle.
	nulls []*os.File
}

type initStep struct {
	name string
	fn   func() error
}

// run walks the steps in order. It only returns on failure, with the name of
// the step that failed.
func (ip *initProcess) run() (string, error) {
	if err := ip.receive(); err != nil {
		return "receive spec", err
	}
	steps := append([]initStep{
		{"validate spec", ip.parseSpec},
		{"mount propagation", ip.setRootPropagation},
		{"prepare rootfs", ip.prepareRootfs},
		{"cgroup namespace", ip.unshareCgroupNamespace},
		{"create devices", ip.createDevices},
		{"working directory", ip.makeCwd},
		{"mask sources", ip.cloneNulls},
		{"pivot root", ip.pivotRoot},
		{"sysctls", ip.setSysctls},
		{"masked paths", ip.maskPaths},
		{"readonly paths", ip.readonlyPaths},
		{"readonly root", ip.readonlyRoot},
		{"terminal", ip.setupTerminal},
	}, ip.processSteps()...)
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return s.name, err
		}
	}
	return "exec", fmt.Errorf("execve of %q returned", ip.exe)
}

// processSteps turn a process that already sees the container's filesystem
// into the container's process: they are shared by the container init and
// the exec stage (exec.go), so an exec'd process is set up exactly like the
// container's own.
func (ip *initProcess) processSteps() []initStep {
	return []initStep{
		{"rlimits", ip.setRlimits},
		{"oom score", ip.setOOMScore},
		{"no new privileges", ip.setNoNewPrivs},
		{"cwd", ip.setCwd},
		{"close fds", closeFdsOnExec},
		// Without no_new_privs, installing a filter takes CAP_SYS_ADMIN:
		// then it goes in while the init still has it (as runc does).
		{"seccomp", ip.seccompPrivileged},
		{"capability bounding set", ip.dropBounding},
		{"user", ip.setUser},
		{"capabilities", ip.setCaps},
		{"resolve executable", ip.resolveExecutable},
		{"seccomp", ip.seccompLast},
		{"exec", ip.exec},
	}
}

// receive gets the spec, then waits until the parent has put this process
// into the container's cgroups: nothing may run (or allocate) before that.
func (ip *initProcess) receive() error {
	m, err := ip.sync.expect(msgSpec)
	if err != nil {
		return err
	}
	if _, err := ip.sync.expect(msgCgroupJoined); err != nil {
		return err
	}
	ip.spec = m.Spec
	ip.seccomp = m.Seccomp
	return nil
}

func (ip *initProcess) parseSpec() error {
	if err := validateSpec(ip.spec); err != nil {
		return err
	}
	if err := validateSeccomp(ip.spec, ip.seccomp); err != nil {
		return err
	}
	if ip.spec.Linux == nil {
		ip.spec.Linux = &specs.Linux{}
	}
	caps, err := parseCapSets(ip.spec.Process.Capabilities)
	if err != nil {
		return err
	}
	ip.caps = caps
	return nil
}

// setRootPropagation makes every mount in our new namespace a slave (or
// what the spec asks) so no mount made from here on reaches the host. A
// shared root (asked for by a bidirectional volume, whose bind then joins
// its host mount's peer group) would also carry the rootfs setup to the
// host: the mount holding the rootfs is made private first, so everything
// mounted under it stays here (and pivot_root accepts it).
func (ip *initProcess) setRootPropagation() error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := ip.spec.Linux.RootfsPropagation; p != "" {
		var err error
		if flag, err = propagationFlag(p); err != nil {
			return err
		}
	}
	if err := mount("", "/", "/", "", flag, ""); err != nil {
		return err
	}
	if flag&unix.MS_SHARED == 0 {
		return nil
	}
	parent, err := mountPointOf(ip.spec.Root.Path)
	if err != nil {
		return err
	}
	return mount("", parent, parent, "", unix.MS_PRIVATE, "")
}

// prepareRootfs bind-mounts the rootfs onto itself and applies the spec's
// mounts in order, every target resolved inside the rootfs.
func (ip *initProcess) prepareRootfs() error {
	// Modes in the spec (device nodes, tmpfs) are meant literally.
	unix.Umask(0)
	root, err := bindRootfs(ip.spec.Root.Path)
	if err != nil {
		return err
	}
	ip.root = root
	for _, m := range ip.spec.Mounts {
		if err := root.mountSpec(m); err != nil {
			return fmt.Errorf("mount %q (%s): %w", m.Destination, m.Type, err)
		}
	}
	return nil
}

// unshareCgroupNamespace gives the container its own cgroup namespace
// (runc's cgroupns=private) when the spec asks for one: rooted at the
// container's cgroup, which the parent moved this process into, so that
// /proc/self/cgroup shows "/". It runs after the cgroup mounts, which find
// our cgroup through the host's view of /proc/self/cgroup. The thread is
// locked, and execve keeps only it.
func (ip *initProcess) unshareCgroupNamespace() error {
	if !slices.ContainsFunc(ip.spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.CgroupNamespace }) {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare cgroup namespace: %w", err)
	}
	return nil
}

// createDevices fills a fresh /dev with the spec's device nodes and the
// standard symlinks.
func (ip *initProcess) createDevices() error {
	if !populatesDev(ip.spec.Mounts) {
		return nil
	}
	for _, d := range ip.spec.Linux.Devices {
		if err := ip.root.createDevice(d); err != nil {
			return err
		}
	}
	return ip.root.createDevSymlinks()
}

func (ip *initProcess) pivotRoot() error {
	path := ip.root.path
	ip.root.close()
	ip.root = nil
	return pivotRoot(path)
}

// setSysctls writes the spec's sysctls, before /proc/sys turns read-only.
func (ip *initProcess) setSysctls() error {
	keys := make([]string, 0, len(ip.spec.Linux.Sysctl))
	for k := range ip.spec.Linux.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := writeSysctl(k, ip.spec.Linux.Sysctl[k]); err != nil {
			return err
		}
	}
	return nil
}

// cloneNulls makes the bind mounts that will mask files: one detached
// clone of the host's /dev/null (checked to be the null device, opened
// without following a symlink) per masked path. The container's own
// /dev/null is never used: with a /dev volume it is whatever a sibling put
// there (CVE-2025-31133).
func (ip *initProcess) cloneNulls() error {
	if len(ip.spec.Linux.MaskedPaths) == 0 {
		return nil
	}
	null, err := openDevNull()
	if err != nil {
		return err
	}
	defer null.Close()
	for range ip.spec.Linux.MaskedPaths {
		m, err := cloneMount(null, false)
		if err != nil {
			return err
		}
		ip.nulls = append(ip.nulls, m)
	}
	return nil
}

// maskPaths hides the spec's masked paths (after pivot_root), each
// resolved once inside the container's root into a handle.
func (ip *initProcess) maskPaths() error {
	if len(ip.spec.Linux.MaskedPaths) == 0 {
		return nil
	}
	root, err := openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	for i, p := range ip.spec.Linux.MaskedPaths {
		err := maskPath(root, p, ip.nulls[i])
		ip.nulls[i].Close()
		if err != nil {
			return err
		}
	}
	ip.nulls = nil
	return nil
}

func (ip *initProcess) readonlyPaths() error {
	if len(ip.spec.Linux.ReadonlyPaths) == 0 {
		return nil
	}
	root, err := openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range ip.spec.Linux.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return err
		}
	}
	return nil
}

// readonlyRoot remounts "/" read-only, last, after every mount under it.
func (ip *initProcess) readonlyRoot() error {
	if !ip.spec.Root.Readonly {
		return nil
	}
	return remountReadonly("/")
}

func (ip *initProcess) setRlimits() error { return setRlimits(ip.spec.Process.Rlimits) }

func (ip *initProcess) setOOMScore() error { return setOOMScoreAdj(ip.spec.Process.OOMScoreAdj) }

func (ip *initProcess) setNoNewPrivs() error {
	if !ip.spec.Process.NoNewPrivileges {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// makeCwd creates the working directory if the image lacks it (as
// containerd does), before pivot_root, resolved inside the rootfs with no
// magic link followed (a working_dir of /proc/1/root/... stays in the
// container), and keeps a handle on it for setCwd.
func (ip *initProcess) makeCwd() error {
	cwd := ip.spec.Process.Cwd
	if cwd == "" {
		cwd = "/"
	}
	f, err := ip.root.mkdirAll(cwd)
	if err != nil {
		return fmt.Errorf("create cwd %q: %w", cwd, err)
	}
	ip.cwd = f
	return nil
}

// setCwd enters the working directory, still as root so that a directory
// the user cannot search works as well: in the init stage the one makeCwd
// made; in the exec stage the container's, resolved inside its root,
// never created.
func (ip *initProcess) setCwd() error {
	cwd := ip.spec.Process.Cwd
	if cwd == "" {
		cwd = "/"
	}
	f := ip.cwd
	ip.cwd = nil
	if f == nil {
		var err error
		if f, err = openCwd(cwd); err != nil {
			return err
		}
	}
	defer f.Close()
	if err := unix.Fchdir(int(f.Fd())); err != nil {
		return fmt.Errorf("chdir %q: %w", cwd, err)
	}
	return nil
}

func (ip *initProcess) dropBounding() error { return dropBounding(ip.caps) }

// setUser switches to the spec's user, keeping the permitted capabilities
// across the switch so that setCaps can still grant them.
func (ip *initProcess) setUser() error {
	if err := setKeepCaps(true); err != nil {
		return err
	}
	if err := setUser(ip.spec.Process.User); err != nil {
		return err
	}
	return setKeepCaps(false)
}

func (ip *initProcess) setCaps() error { return applyCaps(ip.caps) }

// seccompPrivileged installs the filter early, with CAP_SYS_ADMIN still
// held, when no_new_privs is off (the kernel requires one of the two).
func (ip *initProcess) seccompPrivileged() error {
	if ip.spec.Process.NoNewPrivileges {
		return nil
	}
	return InstallSeccomp(ip.seccomp)
}

// seccompLast installs the filter as the very last step before execve
// when no_new_privs is set, so that the fewest syscalls run under it.
func (ip *initProcess) seccompLast() error {
	if !ip.spec.Process.NoNewPrivileges {
		return nil
	}
	return InstallSeccomp(ip.seccomp)
}

// resolveExecutable finds the command through the PATH of the container's
// own environment, inside the container, from its working directory.
func (ip *initProcess) resolveExecutable() error {
	exe, err := lookPath(ip.spec.Process.Args[0], ip.spec.Process.Env)
	if err != nil {
		return err
	}
	ip.exe = exe
	return nil
}

// exec sets the umask, checks the cwd one last time, tells the parent that
// execve is next and replaces this process with the user command.
func (ip *initProcess) exec() error {
	umask := uint32(defaultUmask)
	if u := ip.spec.Process.User.Umask; u != nil {
		umask = *u
	}
	unix.Umask(int(umask))
	if err := checkCwd(); err != nil {
		return err
	}
	if err := ip.sync.send(message{Type: msgExecReady}); err != nil {
		return err
	}
	if err := unix.Exec(ip.exe, ip.spec.Process.Args, ip.spec.Process.Env); err != nil {
		return fmt.Errorf("execve %q: %w", ip.exe, err)
	}
	return nil
}
