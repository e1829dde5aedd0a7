package containerinit

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// si_code values of a SIGCHLD siginfo (linux/signal.h).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// siginfoChild returns si_code and si_status of a SIGCHLD siginfo as
// waitid fills it: x/sys/unix leaves the union opaque. In the sigchld
// member si_pid, si_uid and si_status follow the 16-byte header.
func siginfoChild(info *unix.Siginfo) (code int32, status int32) {
	raw := (*[unsafe.Sizeof(*info)]byte)(unsafe.Pointer(info))
	return info.Code, int32(binary.NativeEndian.Uint32(raw[16+8:]))
}
