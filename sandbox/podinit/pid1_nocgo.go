//go:build !cgo

package podinit

// pid1UnmapsMemory: pid1 unmaps the pod init's memory (see pid1.go).
const pid1UnmapsMemory = true
