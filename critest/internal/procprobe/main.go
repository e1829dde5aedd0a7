// Command procprobe is the hostile process of critest's exec and binary
// tests: a static binary that runs as a container's command and reaches
// for every process that appears in the container's pid namespace, the
// way an attacker with CAP_SYS_PTRACE would during an exec.
//
//	procprobe watch MARKER [PID...]  busy loop over /proc until /tmp/stop
//	                         exists, leaving the given pids alone
//	procprobe true           exit 0 (what the test execs)
//	procprobe stop           create /tmp/stop
//	procprobe cwd MARKER     look for MARKER from the working directory up
//	procprobe cwdwait MARKER the same, then sleep (a container's command)
//
// For every new pid, watch opens /proc/<pid>/root, cwd, exe and every
// fd/*, keeps them, and through each directory it got (walking up with
// "..") looks for MARKER, a file the test put on the host's root, and
// tries to create MARKER.created next to where it looked; through exe it
// tries to open the file for writing (never writing a byte). It tries
// again through everything it kept once it is told to stop, since such a
// descriptor stays usable after the process it came from has exited.
//
// It prints one line per finding, then "probed=N", "exe=DEV:INO" for
// every distinct executable it reached that is not its own, and "=end=":
//
//	HOST-MARKER <how>        MARKER was readable
//	HOST-CREATE <how>        MARKER.created was created
//	EXE-WRITABLE <how>       an executable opened for writing
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const stopFile = "/tmp/stop"

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	switch os.Args[1] {
	case "true":
		os.Exit(0)
	case "stop":
		if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "cwd", "cwdwait":
		if len(os.Args) != 3 {
			os.Exit(2)
		}
		w := &watcher{marker: os.Args[2]}
		if fd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			w.tryDir(fd, "cwd")
		}
		for _, f := range w.found {
			fmt.Println(f)
		}
		fmt.Println("=end=")
		os.Stdout.Sync()
		for os.Args[1] == "cwdwait" {
			time.Sleep(time.Hour)
		}
	case "watch":
		if len(os.Args) < 3 {
			os.Exit(2)
		}
		// It keeps descriptors of hundreds of processes.
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
			lim.Cur = lim.Max
			_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		}
		w := &watcher{marker: os.Args[2], seen: map[int]bool{os.Getpid(): true}, exes: map[string]bool{}}
		w.self = fileID("/proc/self/exe")
		for _, a := range os.Args[3:] {
			if pid, err := strconv.Atoi(a); err == nil {
				w.seen[pid] = true
			}
		}
		w.run()
	default:
		os.Exit(2)
	}
}

// handle is a descriptor the watcher reached, and how.
type handle struct {
	fd  int
	how string
}

type watcher struct {
	marker string
	self   string
	seen   map[int]bool
	dirs   []handle // root, cwd and directory fds of other processes
	execs  []handle // their executables, read-only
	exes   map[string]bool
	probed int
	found  []string
}

func (w *watcher) run() {
	fmt.Println("watching")
	os.Stdout.Sync()
	for {
		w.scan()
		if _, err := os.Stat(stopFile); err == nil {
			break
		}
	}
	// Once more through everything kept: the processes are gone now.
	for _, h := range w.dirs {
		w.tryDir(h.fd, h.how+" (kept)")
	}
	for _, h := range w.execs {
		w.tryWrite(h.fd, h.how+" (kept)")
	}
	for _, f := range w.found {
		fmt.Println(f)
	}
	fmt.Printf("probed=%d\n", w.probed)
	exes := make([]string, 0, len(w.exes))
	for e := range w.exes {
		exes = append(exes, e)
	}
	sort.Strings(exes)
	for _, e := range exes {
		fmt.Printf("exe=%s\n", e)
	}
	fmt.Println("=end=")
}

// scan probes every pid of /proc not seen before.
func (w *watcher) scan() {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || w.seen[pid] {
			continue
		}
		w.seen[pid] = true
		w.probe(pid)
	}
}

// probe reaches for everything of pid. What it reached is kept unless
// pid turned out to be one of the container's own processes (running
// procprobe) by then.
func (w *watcher) probe(pid int) {
	w.probed++
	base := "/proc/" + strconv.Itoa(pid)
	var dirs []handle
	for _, what := range []string{"root", "cwd"} {
		if fd, err := unix.Open(base+"/"+what, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			h := handle{fd, fmt.Sprintf("pid %d %s", pid, what)}
			dirs = append(dirs, h)
			w.tryDir(h.fd, h.how)
		}
	}
	own := false
	if fd, err := unix.Open(base+"/exe", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		id := fdID(fd)
		if own = id == w.self; own {
			unix.Close(fd)
		} else {
			w.exes[id] = true
			h := handle{fd, fmt.Sprintf("pid %d exe", pid)}
			w.execs = append(w.execs, h)
			w.tryWrite(fd, h.how)
		}
	}
	defer func() {
		if !own {
			w.dirs = append(w.dirs, dirs...)
			return
		}
		for _, h := range dirs {
			unix.Close(h.fd)
		}
	}()
	fds, _ := os.ReadDir(base + "/fd")
	for _, e := range fds {
		fd, err := unix.Open(base+"/fd/"+e.Name(), unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			continue
		}
		h := handle{fd, fmt.Sprintf("pid %d fd %s", pid, e.Name())}
		dirs = append(dirs, h)
		w.tryDir(fd, h.how)
	}
}

// tryDir looks for the marker in dir and in each directory above it, and
// tries to create a file wherever it finds it.
func (w *watcher) tryDir(dir int, how string) {
	path := ""
	for range 64 {
		if fd, err := unix.Openat(dir, path+w.marker, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err == nil {
			unix.Close(fd)
			w.found = append(w.found, "HOST-MARKER "+how+" "+path)
			if fd, err := unix.Openat(dir, path+w.marker+".created", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644); err == nil {
				unix.Close(fd)
				w.found = append(w.found, "HOST-CREATE "+how+" "+path)
			}
			return
		}
		path += "../"
	}
}

// tryWrite opens the executable behind fd for writing, through its
// /proc/self/fd link (as CVE-2019-5736 did once the runtime had exited),
// and never writes.
func (w *watcher) tryWrite(fd int, how string) {
	for _, flags := range []int{unix.O_WRONLY | unix.O_APPEND, unix.O_RDWR | unix.O_APPEND} {
		wfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), flags|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(wfd)
			w.found = append(w.found, "EXE-WRITABLE "+how)
			return
		}
	}
}

func fileID(path string) string {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func fdID(fd int) string {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
