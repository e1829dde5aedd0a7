package containerinit

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// A container created with a terminal (spec.Process.Terminal) gets one of
// its own devpts instance, allocated by the init stage inside the
// container, so that inside it is /dev/pts/N and ttyname(3) works. The
// master goes to the parent over the sync socket (msgTerminal with the
// descriptor attached), the peer becomes the container's stdio and
// controlling terminal.

// setupTerminal is the init stage's terminal step (after pivot_root, with
// the container's /dev in place).
func (ip *initProcess) setupTerminal() error {
	if !ip.spec.Process.Terminal {
		return nil
	}
	m, err := openPtmx()
	if err != nil {
		return err
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock terminal: %w", err)
	}
	peer, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fmt.Errorf("open terminal peer: %w", errno)
	}
	s := int(peer)
	defer unix.Close(s)
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(s, fd, 0); err != nil {
			return fmt.Errorf("terminal as fd %d: %w", fd, err)
		}
	}
	// The init stage leads its own session (Setsid at fork).
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return ip.sync.sendFd(message{Type: msgTerminal}, m)
}

// devptsSuperMagic is the filesystem type statfs(2) reports for devpts.
const devptsSuperMagic = 0x1cd1

// openPtmx opens the multiplexer of the container's devpts instance: the
// "ptmx" inside the devpts mounted at /dev/pts, checked to be a devpts and
// the ptmx device (5:2), never whatever /dev/ptmx or a link in a /dev
// volume points to (CVE-2025-52565).
func openPtmx() (int, error) {
	pts, err := unix.Open("/dev/pts", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/pts (the container's devpts, not a symlink): %w", err)
	}
	defer unix.Close(pts)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(pts, &sfs); err != nil {
		return -1, fmt.Errorf("statfs /dev/pts: %w", err)
	}
	if sfs.Type != devptsSuperMagic {
		return -1, fmt.Errorf("/dev/pts is not a devpts (filesystem type %#x): the container has no terminal devices", sfs.Type)
	}
	m, err := unix.Openat(pts, "ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/pts/ptmx: %w", err)
	}
	if err := checkCharDevice(m, 5, 2); err != nil {
		unix.Close(m)
		return -1, fmt.Errorf("/dev/pts/ptmx: %w", err)
	}
	return m, nil
}

// sendFd sends m with fd attached (SCM_RIGHTS) in one sendmsg.
func (p *syncPipe) sendFd(m message, fd int) error {
	b, err := jsonLine(m)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(syncFd, b, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// fdReader reads the parent's end of the sync socket with recvmsg, keeping
// the descriptors that arrive with the data (a plain read would close
// them).
type fdReader struct {
	fd  int
	fds []int
}

func (r *fdReader) Read(b []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(r.fd, b, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range msgs {
					if fds, err := unix.ParseUnixRights(&cm); err == nil {
						r.fds = append(r.fds, fds...)
					}
				}
			}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// take returns the oldest received descriptor as a file, or nil.
func (r *fdReader) take(name string) *os.File {
	if len(r.fds) == 0 {
		return nil
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return os.NewFile(uintptr(fd), name)
}

func (r *fdReader) closeAll() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
