package containerinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultPath is the PATH used to find the command when the container's
// environment has none; the same default DefaultSpec puts into Env.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultUmask applies when the spec's user has none.
const defaultUmask = 0o022

var rlimitByName = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// setRlimits applies the spec's rlimits. unix.Setrlimit (prlimit) also tells
// the Go runtime not to restore its startup RLIMIT_NOFILE at execve.
func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := rlimitByName[l.Type]
		if !ok {
			return fmt.Errorf("%w: unknown rlimit %q", ErrInvalidSpec, l.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			return fmt.Errorf("set %s to %d/%d: %w", l.Type, l.Soft, l.Hard, err)
		}
	}
	return nil
}

// oomScoreAdjPath is below /proc: written through a verified procfs
// handle (procfs.go).
const oomScoreAdjPath = "self/oom_score_adj"

// setOOMScoreAdj writes the spec's oom_score_adj. Lowering the value needs
// CAP_SYS_RESOURCE, which root in cubby's pods may lack: then the current
// value is kept (clamped) instead of failing the container.
func setOOMScoreAdj(want *int) error {
	if want == nil {
		return nil
	}
	b, err := readProcFile(oomScoreAdjPath)
	if err != nil {
		return fmt.Errorf("read oom_score_adj: %w", err)
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("parse oom_score_adj %q: %w", b, err)
	}
	if *want == cur {
		return nil
	}
	err = writeProcFile(oomScoreAdjPath, strconv.Itoa(*want))
	if err != nil && *want < cur && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %d to oom_score_adj: %w", *want, err)
	}
	return nil
}

// setUser switches this thread to the spec's user and groups. Like the
// capabilities, credentials are per thread in the kernel: only the thread
// that will execve needs them (execve ends the others), and setting them
// there alone spares the Go runtime's all-threads round (a third of a
// millisecond per call, on every container start and exec).
func setUser(u specs.User) error {
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	// Always set: an empty list drops the groups inherited from cubby-pod.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("setgroups %v: %w", groups, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}

// setKeepCaps controls whether this thread keeps its permitted capabilities
// when its uids all leave 0.
func setKeepCaps(keep bool) error {
	v := uintptr(0)
	if keep {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps %v: %w", keep, err)
	}
	return nil
}

// lookPath finds the command in the container: a name with a slash is
// used as is, anything else is searched in the PATH of env.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	pathEnv, ok := envValue(env, "PATH")
	if !ok {
		pathEnv = defaultPath
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", file, ErrExecutableNotFound)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// envValue returns the last value of key in env ("KEY=value" entries).
func envValue(env []string, key string) (string, bool) {
	var val string
	found := false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

// closeFdsOnExec marks every fd from 3 up close-on-exec, so none of
// cubby-pod's or the Go runtime's descriptors reach the container
// (CVE-2024-21626). They are not closed here: the runtime still uses some
// (epoll, pidfds), and the sync socket must stay open until execve succeeds,
// which is what tells the parent the container started.
func closeFdsOnExec() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if err != unix.ENOSYS && err != unix.EINVAL {
		return fmt.Errorf("close_range: %w", err)
	}
	// Kernels before 5.11: walk the fd table.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		// The fd of the ReadDir itself is gone by now: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("set close-on-exec on fd %d: %w", fd, err)
		}
	}
	return nil
}

// checkCwd makes sure the working directory is inside the container: a
// leaked host fd used as cwd would show as "(unreachable)/..." or fail.
func checkCwd() error {
	wd, err := unix.Getwd()
	if err != nil {
		return fmt.Errorf("cwd is not inside the container: %w", err)
	}
	if !strings.HasPrefix(wd, "/") || strings.HasPrefix(wd, "(unreachable)") {
		return fmt.Errorf("cwd %q is not inside the container", wd)
	}
	return nil
}
