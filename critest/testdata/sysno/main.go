// Command sysno makes the syscalls named by its arguments (a number, or
// keyctl or unshare) and prints "<arg>=<errno>" for each (0: it worked).
// Built static at test time and run in a container, it shows what the
// container's seccomp filter answers.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	for _, arg := range os.Args[1:] {
		var nr, a1 uintptr
		switch arg {
		case "keyctl":
			nr = syscall.SYS_KEYCTL
		case "unshare":
			nr, a1 = syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER
		default:
			n, err := strconv.Atoi(arg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "sysno: %q is not a syscall\n", arg)
				os.Exit(2)
			}
			nr = uintptr(n)
		}
		_, _, errno := syscall.RawSyscall(nr, a1, 0, 0)
		fmt.Printf("%s=%d\n", arg, int(errno))
	}
}
