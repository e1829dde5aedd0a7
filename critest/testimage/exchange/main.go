// Command exchange swaps two paths with renameat2(RENAME_EXCHANGE) in a
// tight loop until it is killed: the hostile sibling of critest's
// mount-target race (CVE-2021-30465), which turns a directory of a shared
// volume into a symlink and back faster than any shell could. critest
// builds it static and adds it to a test image.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: exchange PATH1 PATH2")
		os.Exit(2)
	}
	for {
		if err := unix.Renameat2(unix.AT_FDCWD, os.Args[1], unix.AT_FDCWD, os.Args[2], unix.RENAME_EXCHANGE); err != nil {
			fmt.Fprintf(os.Stderr, "exchange %s %s: %v\n", os.Args[1], os.Args[2], err)
			os.Exit(1)
		}
	}
}
