package podinit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The pod's PID 1.
//
// A pod with a pid namespace of its own does not have the pod init as its
// PID 1: the pod init holds the host (the state directory, rootfs and bind
// sources, cgroup files, its control socket) and every container sharing
// the pod's pid namespace could reach all of it through /proc/1/{root,cwd,
// fd,mountinfo}. The pod init stays in the node's pid namespace instead and
// makes the pod's one by forking pid1 with CLONE_NEWPID|CLONE_NEWNS. pid1
// is a fork without an execve: a copy of the pod init that runs a few
// system calls and no Go runtime, so it costs a few pages, not a process's
// heap. Before it reports ready, and so before anything else can be in its
// pid namespace, it has
//
//   - PR_SET_PDEATHSIG(SIGKILL): it dies with the pod init (the thread that
//     forked it, which is why that thread must never end), and the kernel
//     then kills everything in the pod's pid namespace (containers with a
//     pid namespace of their own are not in it: the keeper ends those);
//   - every signal handler reset to SIG_DFL, so that, as PID 1 of its
//     namespace, the kernel drops every signal its containers send it;
//   - an empty read-only tmpfs as its root, by pivot_root in its own mount
//     namespace, the node's mounts detached: /proc/1/root, cwd and
//     mountinfo show nothing of the node;
//   - no descriptor, no capability (bounding, ambient, effective,
//     permitted, inheritable), no_new_privs, not dumpable (so /proc/1/*
//     needs CAP_SYS_PTRACE, and holds nothing even then);
//   - no memory of the pod init: everything writable is unmapped, which
//     leaves the binary's read-only text and data and the few stack pages
//     its loop runs on (its cmdline and environment read empty).
//
// It then reaps whatever is re-parented to it, forever. The pod init forks
// the containers into its namespace from threads that joined it, stays
// their parent and records their exits; pid1 only ever has orphans.
//
// The child half (pid1Main) runs in a copy of a multi-threaded Go process
// whose other threads did not come along: it must not enter the Go runtime
// (no allocation, no stack growth, no scheduler, no write barrier), so it
// is nosplit and makes raw system calls only, on data prepared by the
// parent. Coverage instrumentation would write counters into memory it has
// unmapped: the package's tests do not fork it under -cover. In a binary
// built with cgo it keeps its memory (see pid1UnmapsMemory).

// pid1MaxKeep bounds the read-only mappings pid1 keeps.
const pid1MaxKeep = 32

// pid1Name is pid1's comm, what ps shows for the pod's PID 1.
const pid1Name = "cubby-pid1"

// pid1 is the pod's PID 1, a child of the pod init.
type pid1 struct {
	pid   int      // in the pod init's pid namespace
	pidfd *os.File // of pid
	ns    *os.File // its pid namespace, which the containers are forked into
}

// span is a range of addresses [start, end).
type span struct{ start, end uintptr }

// pid1Frame is what pid1 still uses after it has unmapped the pod init's
// memory: it lives on the stack of the forking goroutine.
type pid1Frame struct {
	keep  [pid1MaxKeep]span // read-only mappings, sorted
	nkeep int
	top   uintptr // end of the highest mapping to unmap up to
	page  uintptr
	ready uintptr // fd of the report pipe
	nfd   uintptr // bound of the close loop when close_range is missing
}

// pid1Plan is everything pid1 needs, prepared by the parent: strings as
// NUL-terminated bytes with their addresses (heap objects do not move).
type pid1Plan struct {
	frame pid1Frame
	strs  []byte // the strings below, NUL-terminated

	root, tmpfs, tmpfsData, dot, slash, name uintptr
}

// pid1Step names the step a failed pid1 reports.
type pid1Step uint32

const (
	pid1OK pid1Step = iota
	pid1DeathSignal
	pid1MountPrivate
	pid1MountRoot
	pid1EnterRoot
	pid1PivotRoot
	pid1DetachOldRoot
	pid1Chdir
	pid1CloseFds
	pid1Caps
	pid1NoNewPrivs
	pid1Dumpable
)

var pid1StepNames = [...]string{
	pid1OK:            "ok",
	pid1DeathSignal:   "set parent death signal",
	pid1MountPrivate:  "make mounts private",
	pid1MountRoot:     "mount empty root",
	pid1EnterRoot:     "enter empty root",
	pid1PivotRoot:     "pivot_root",
	pid1DetachOldRoot: "detach old root",
	pid1Chdir:         "chdir /",
	pid1CloseFds:      "close descriptors",
	pid1Caps:          "drop capabilities",
	pid1NoNewPrivs:    "set no_new_privs",
	pid1Dumpable:      "clear dumpable",
}

func (s pid1Step) String() string {
	if int(s) < len(pid1StepNames) {
		return pid1StepNames[s]
	}
	return "step " + strconv.Itoa(int(s))
}

// pid1ReadyTimeout bounds the wait for pid1's report.
const pid1ReadyTimeout = 10 * time.Second

// startPid1 forks the pod's PID 1 in a new pid and mount namespace, waits
// until it holds nothing of the host (see above), and bind-mounts its pid
// namespace onto pinPath. mountDir is an existing directory that pid1
// mounts its empty root on, in its own mount namespace (it stays as it is
// on the host).
//
// The caller must be locked to an OS thread that lives as long as the
// process: pid1 is killed when that thread ends.
func startPid1(mountDir, pinPath string) (*pid1, error) {
	plan, err := newPid1Plan(mountDir)
	if err != nil {
		return nil, fmt.Errorf("prepare the pod's PID 1: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("fork the pod's PID 1: %w", err)
	}
	defer r.Close()
	plan.frame.ready = w.Fd()
	pid, pidfd, errno := clonePid1(plan)
	w.Close()
	if errno != 0 {
		return nil, fmt.Errorf("fork the pod's PID 1: %w", errno)
	}
	p := &pid1{pid: pid, pidfd: os.NewFile(uintptr(pidfd), "pid1")}
	if err := readPid1Report(r); err != nil {
		p.close()
		return nil, fmt.Errorf("the pod's PID 1 (pid %d): %w", pid, err)
	}
	// Our child, not reaped: /proc/<pid> is pid1's.
	p.ns, err = os.Open(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err == nil {
		err = pinNamespaceFile(p.ns, pinPath)
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("pin the pod's pid namespace: %w", err)
	}
	return p, nil
}

// close kills pid1 (the whole pod pid namespace with it) and releases its
// descriptors. It does not wait: pid1 ends only once every process of its
// namespace has been reaped, and those the pod init forked into it are
// the pod init's to reap (the reaper loop, or the keeper once the pod init
// is gone).
func (p *pid1) close() {
	_ = unix.PidfdSendSignal(int(p.pidfd.Fd()), unix.SIGKILL, nil, 0)
	p.pidfd.Close()
	if p.ns != nil {
		p.ns.Close()
	}
}

// readPid1Report waits for pid1's report: 0 once it is ready, or the step
// that failed and its errno.
func readPid1Report(r *os.File) error {
	_ = r.SetReadDeadline(time.Now().Add(pid1ReadyTimeout))
	var msg [8]byte
	if _, err := io.ReadFull(r, msg[:]); err != nil {
		return fmt.Errorf("no report: %w", err)
	}
	step := pid1Step(binary.NativeEndian.Uint32(msg[:4]))
	errno := syscall.Errno(binary.NativeEndian.Uint32(msg[4:]))
	if step != pid1OK {
		return fmt.Errorf("%s: %w", step, errno)
	}
	return nil
}

// pinNamespaceFile bind-mounts the namespace open as ns onto path.
func pinNamespaceFile(ns *os.File, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", ns.Fd())
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s to %s: %w", src, path, err)
	}
	return nil
}

// newPid1Plan prepares pid1's strings and the list of mappings it keeps.
func newPid1Plan(mountDir string) (*pid1Plan, error) {
	abs, err := filepath.Abs(mountDir)
	if err != nil {
		return nil, err
	}
	p := &pid1Plan{}
	strs := []string{abs, "tmpfs", "size=4k,nr_inodes=2,mode=0", ".", "/", pid1Name}
	size := 0
	for _, s := range strs {
		size += len(s) + 1
	}
	// One buffer, never grown: the addresses taken stay valid.
	p.strs = make([]byte, 0, size)
	addrs := make([]uintptr, len(strs))
	for i, s := range strs {
		addrs[i] = uintptr(unsafe.Pointer(unsafe.SliceData(p.strs[len(p.strs):cap(p.strs)])))
		p.strs = append(append(p.strs, s...), 0)
	}
	p.root, p.tmpfs, p.tmpfsData, p.dot, p.slash, p.name = addrs[0], addrs[1], addrs[2], addrs[3], addrs[4], addrs[5]
	p.frame.page = uintptr(os.Getpagesize())
	var lim unix.Rlimit
	p.frame.nfd = 1024
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		p.frame.nfd = uintptr(min(lim.Cur, 1<<16))
	}
	maps, err := readMaps()
	if err != nil {
		return nil, err
	}
	n, top, err := parseMaps(maps, &p.frame.keep)
	if err != nil {
		return nil, err
	}
	p.frame.nkeep, p.frame.top = n, top
	return p, nil
}

// readMaps reads /proc/self/maps into one buffer: the plan is made once
// per pod, in the pod init whose memory is per-pod memory, so it
// allocates little.
func readMaps() ([]byte, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("/proc/self/maps is longer than %d bytes", len(buf))
}

// parseMaps parses a /proc/<pid>/maps listing (in address order), puts the
// mappings that are readable and not writable (program text and read-only
// data, the vDSO) into keep, and returns how many and the end of the
// highest mapping ([vsyscall], above user space, is left out).
func parseMaps(maps []byte, keep *[pid1MaxKeep]span) (n int, top uintptr, err error) {
	for line := range bytes.Lines(maps) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 || bytes.HasSuffix(line, []byte("[vsyscall]")) {
			continue
		}
		rng, rest, _ := bytes.Cut(line, []byte(" "))
		lo, hi, ok := bytes.Cut(rng, []byte("-"))
		start, ok1 := parseHex(lo)
		end, ok2 := parseHex(hi)
		if !ok || !ok1 || !ok2 || end < start || start < top || len(rest) < 2 {
			return 0, 0, fmt.Errorf("maps line %q", line)
		}
		top = end
		if rest[0] == 'r' && rest[1] == '-' {
			if n == len(keep) {
				return 0, 0, fmt.Errorf("more than %d read-only mappings", len(keep))
			}
			keep[n] = span{start, end}
			n++
		}
	}
	return n, top, nil
}

// parseHex parses a non-empty hexadecimal number that fits a uintptr.
func parseHex(b []byte) (uintptr, bool) {
	var v uintptr
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		if v>>(unsafe.Sizeof(v)*8-4) != 0 {
			return 0, false
		}
		v = v<<4 | uintptr(c)
	}
	return v, len(b) > 0
}

// clonePid1 forks pid1 (see the comment at the top of the file) and
// returns its pid and a pidfd, or the errno of the clone.
//
// Every signal is blocked on this thread across the fork, so the child
// starts with none deliverable: the handlers it inherits are the Go
// runtime's, of no use without it, until it has reset them.
//
//go:norace
//go:nocheckptr
func clonePid1(p *pid1Plan) (pid, pidfd int, errno syscall.Errno) {
	f := p.frame // on this stack: the child uses it after unmapping the heap
	all, old := ^uint64(0), uint64(0)
	fd := int32(-1)
	_, _, _ = syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWPID|unix.CLONE_NEWNS|unix.CLONE_PIDFD|uintptr(unix.SIGCHLD),
		0, uintptr(unsafe.Pointer(&fd)), 0, 0, 0)
	if e != 0 || r1 != 0 {
		_, _, _ = syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
		return int(r1), int(fd), e
	}
	pid1Main(p, &f) // never returns
	return 0, 0, 0
}

// pid1Main is the child: it never returns. Only raw system calls (see the
// comment at the top of the file); p is read until the memory is unmapped,
// f after.
//
//go:nosplit
//go:norace
//go:nocheckptr
func pid1Main(p *pid1Plan, f *pid1Frame) {
	ready := f.ready
	if e := rawSys(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1DeathSignal, e)
	}
	var act [4]uintptr // SIG_DFL, no flags, empty mask
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig != uintptr(unix.SIGKILL) && sig != uintptr(unix.SIGSTOP) {
			_ = rawSys(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&act)), 0, 8, 0)
		}
	}
	// The empty root: nothing of this mount namespace may propagate back
	// to the node's, then a read-only tmpfs becomes / and the node's
	// mounts are detached.
	if e := rawSys(unix.SYS_MOUNT, 0, p.slash, 0, unix.MS_REC|unix.MS_PRIVATE, 0); e != 0 {
		pid1Fail(ready, pid1MountPrivate, e)
	}
	if e := rawSys(unix.SYS_MOUNT, p.tmpfs, p.root, p.tmpfs, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, p.tmpfsData); e != 0 {
		pid1Fail(ready, pid1MountRoot, e)
	}
	if e := rawSys(unix.SYS_CHDIR, p.root, 0, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1EnterRoot, e)
	}
	if e := rawSys(unix.SYS_PIVOT_ROOT, p.dot, p.dot, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1PivotRoot, e)
	}
	if e := rawSys(unix.SYS_UMOUNT2, p.dot, unix.MNT_DETACH, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1DetachOldRoot, e)
	}
	if e := rawSys(unix.SYS_CHDIR, p.slash, 0, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1Chdir, e)
	}
	// Every descriptor but the report pipe.
	if ready > 0 {
		if e := rawSys(unix.SYS_CLOSE_RANGE, 0, ready-1, 0, 0, 0); e == unix.ENOSYS {
			for fd := uintptr(0); fd < ready; fd++ {
				_ = rawSys(unix.SYS_CLOSE, fd, 0, 0, 0, 0)
			}
		} else if e != 0 {
			pid1Fail(ready, pid1CloseFds, e)
		}
	}
	if e := rawSys(unix.SYS_CLOSE_RANGE, ready+1, uintptr(^uint32(0)), 0, 0, 0); e == unix.ENOSYS {
		for fd := ready + 1; fd < f.nfd; fd++ {
			_ = rawSys(unix.SYS_CLOSE, fd, 0, 0, 0, 0)
		}
	} else if e != 0 {
		pid1Fail(ready, pid1CloseFds, e)
	}
	// No capability in any set; EINVAL past the last capability the
	// kernel knows, and for ambient ones on a kernel without them.
	_ = rawSys(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	for c := uintptr(0); c < 64; c++ {
		_ = rawSys(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0, 0, 0)
	}
	hdr := [2]uint32{unix.LINUX_CAPABILITY_VERSION_3, 0}
	var data [6]uint32
	if e := rawSys(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data)), 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1Caps, e)
	}
	if e := rawSys(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1NoNewPrivs, e)
	}
	if e := rawSys(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0); e != 0 {
		pid1Fail(ready, pid1Dumpable, e)
	}
	_ = rawSys(unix.SYS_PRCTL, unix.PR_SET_NAME, p.name, 0, 0, 0)

	// Unmap everything writable (and everything not mapped read-only)
	// but the stack pages from pid1Main's frame up to the end of f, in
	// clonePid1's: below, a page for the raw system calls.
	if pid1UnmapsMemory {
		page := f.page
		lo := (uintptr(unsafe.Pointer(&hdr)) &^ (page - 1)) - page
		hi := (uintptr(unsafe.Pointer(f)) + unsafe.Sizeof(*f) + page - 1) &^ (page - 1)
		prev := uintptr(0)
		for i := 0; i < f.nkeep && i < pid1MaxKeep; i++ {
			unmapOutside(prev, f.keep[i].start, lo, hi)
			prev = f.keep[i].end
		}
		unmapOutside(prev, f.top, lo, hi)
	}

	var msg [2]uint32 // pid1OK
	_ = rawSys(unix.SYS_WRITE, ready, uintptr(unsafe.Pointer(&msg)), 8, 0, 0)
	_ = rawSys(unix.SYS_CLOSE, ready, 0, 0, 0, 0)

	// Reap forever. SIGCHLD stays blocked so that it is queued (and
	// sigtimedwait takes it) although its action is the default one;
	// every other signal is unblocked, and dropped by the kernel.
	mask := uint64(1) << (uint(unix.SIGCHLD) - 1)
	_ = rawSys(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&mask)), 0, 8, 0)
	for {
		for {
			r, _, e := syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), 0, unix.WNOHANG|unix.WALL, 0, 0, 0)
			if e == unix.EINTR {
				continue
			}
			if e != 0 || r == 0 {
				break
			}
		}
		_ = rawSys(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&mask)), 0, 0, 8, 0)
	}
}

// unmapOutside unmaps [start, end) but for [lo, hi).
//
//go:nosplit
//go:norace
func unmapOutside(start, end, lo, hi uintptr) {
	if start < end && start < lo {
		_ = rawSys(unix.SYS_MUNMAP, start, min(end, lo)-start, 0, 0, 0)
	}
	if start < end && hi < end {
		s := max(start, hi)
		_ = rawSys(unix.SYS_MUNMAP, s, end-s, 0, 0, 0)
	}
}

// pid1Fail reports step and e on the pipe ready and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func pid1Fail(ready uintptr, step pid1Step, e syscall.Errno) {
	msg := [2]uint32{uint32(step), uint32(e)}
	_ = rawSys(unix.SYS_WRITE, ready, uintptr(unsafe.Pointer(&msg)), 8, 0, 0)
	_ = rawSys(unix.SYS_EXIT_GROUP, 1, 0, 0, 0, 0)
}

// rawSys is a raw system call that returns its errno only.
//
//go:nosplit
//go:norace
func rawSys(trap, a1, a2, a3, a4, a5 uintptr) syscall.Errno {
	_, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, 0)
	return e
}
