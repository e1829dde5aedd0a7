package keeper

import "path/filepath"

// Arg is the argv[1] that makes cubby-pod the keeper.
const Arg = "keeper"

// SocketName is the keeper's socket in the directory it serves.
const SocketName = "keeper.sock"

// SocketPath is the keeper's socket for state directory dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Ops of a Request.
const (
	// OpSpawn forks a child of the keeper; see Request.
	OpSpawn = "spawn"
	// OpHold opens the connection a running cubbyd keeps.
	OpHold = "hold"
	// OpRelease, sent on the hold connection before a cubbyd closes it
	// at shutdown, lets the keeper exit once it has no child left. A hold
	// that ends without it was a cubbyd that died: the keeper stays for
	// the next one.
	OpRelease = "release"
)

// maxChildFds bounds the descriptors a spawn may pass: the child's
// stdin, stdout, stderr and one more.
const maxChildFds = 4

// Request is one call to the keeper.
type Request struct {
	Op string `json:"op"`
	// Args is the argv of the child (spawn); the program is the keeper's
	// own executable, the cubby-pod binary.
	Args []string `json:"args,omitempty"`
	// Env is the child's environment (spawn).
	Env []string `json:"env,omitempty"`
	// CloneFlags are the namespaces the child is born in (spawn).
	CloneFlags uintptr `json:"cloneFlags,omitempty"`
	// CgroupProcsFiles are written with the child's pid before anything
	// else may see it (spawn).
	CgroupProcsFiles []string `json:"cgroupProcsFiles,omitempty"`
}

// Response answers a Request; Error is set when it failed.
type Response struct {
	Error string `json:"error,omitempty"`
	// Pid is the child's (spawn) or the keeper's (hold).
	Pid int `json:"pid,omitempty"`
	// Children is how many children the keeper has (hold, release).
	Children int `json:"children,omitempty"`
}

// errExiting is the answer of a keeper that is on its way out; the caller
// starts a new one.
const errExiting = "keeper is exiting"
