//go:build cgo

package podinit

// pid1UnmapsMemory is false in a binary built with cgo (a test binary):
// there the C library registers each thread's rseq area, which the kernel
// writes on returns to user space, and pid1 would die unmapping it.
// cubby-pod is built without cgo.
const pid1UnmapsMemory = false
