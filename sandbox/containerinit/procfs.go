package containerinit

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Every file the runtime writes under /proc (sysctls, oom_score_adj) is
// opened through a handle on /proc checked to be the root of a procfs,
// and below it with openat2 refusing to cross a mount, to follow a magic
// link or to leave it. A bind mount or a symlink that a container put in
// the way (CVE-2025-52881) fails the write instead of redirecting it.

// procRootIno is the inode number of every procfs root.
const procRootIno = 1

// procBeneath keeps a lookup below the procfs handle, on that procfs.
const procBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openProcRoot returns a handle on /proc (of the caller's root) after
// checking that it is the root of a procfs.
func openProcRoot() (*os.File, error) {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	f := os.NewFile(uintptr(fd), "/proc")
	if err := checkProcRoot(fd); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkProcRoot(fd int) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fmt.Errorf("statfs /proc: %w", err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("/proc is not a procfs (filesystem type %#x)", sfs.Type)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat /proc: %w", err)
	}
	if st.Ino != procRootIno {
		return fmt.Errorf("/proc is not the root of a procfs (inode %d)", st.Ino)
	}
	return nil
}

// openProcFile opens the file at rel (such as "sys/net/ipv4/ip_forward" or
// "self/oom_score_adj") below the verified /proc with flags.
func openProcFile(rel string, flags int) (*os.File, error) {
	proc, err := openProcRoot()
	if err != nil {
		return nil, err
	}
	defer proc.Close()
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOCTTY), Resolve: procBeneath}
	fd, err := openat2(int(proc.Fd()), rel, &how)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/proc/" + rel, Err: err}
	}
	return os.NewFile(uintptr(fd), "/proc/"+rel), nil
}

// writeProcFile writes data to the existing file /proc/<rel>.
func writeProcFile(rel, data string) error {
	f, err := openProcFile(rel, unix.O_WRONLY)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readProcFile returns the contents of /proc/<rel>.
func readProcFile(rel string) ([]byte, error) {
	f, err := openProcFile(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
