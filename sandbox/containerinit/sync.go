package containerinit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The parent (cubby-pod, in Start) and the child (the init stage, in Main)
// talk over a unix socketpair that the child sees as fd 3. Every message is
// one JSON object; the channel is ordered and each side only ever waits for
// the next message it expects.
//
//	  parent (Start)                               child (Main)
//	  --------------                               ------------
//	  fork + exec  the sealed cubby-pod init
//	  (CLONE_NEWNS|CLONE_NEWPID) --------------->  starts, locks its OS thread
//	    [msgSpec: OCI spec, seccomp filter] --->  decodes the spec
//	  write pid to every cgroup.procs
//	                       [msgCgroupJoined] --->  runs every setup step
//	                                               (mounts, devices, pivot_root,
//	                                               paths, rlimits, user, caps)
//	      with a terminal  <--- [msgTerminal + master fd (SCM_RIGHTS)]
//	                                           |
//	      on failure   <--- [msgError: step, text] and exit(1)
//	                                           |
//	      on success   <------------ [msgExecReady]
//	                                               execve(user command); the
//	                                               sync fd is O_CLOEXEC, so ...
//	      ... EOF      <------------ (socket closed by execve)
//	                                           |
//	      execve failed  <--- [msgError] and exit(1)
//
// The exec stage (exec.go) speaks the same protocol: its msgSpec carries
// the flat process instead of a spec; it is born in the container's
// namespaces, so nothing about them is sent.
//
// Start therefore reports success only after msgExecReady followed by EOF
// with no msgError in between; EOF before msgExecReady means the child died
// without explaining why (ErrInitExited).

// syncFd is the child's end of the socketpair: ProcAttr.Files index 3.
const syncFd = 3

type msgType string

const (
	// msgSpec carries the OCI spec, parent to child.
	msgSpec msgType = "spec"
	// msgCgroupJoined tells the child it is in its cgroups, parent to child.
	msgCgroupJoined msgType = "cgroup-joined"
	// msgExecReady says everything is set up and execve is next, child to
	// parent.
	msgExecReady msgType = "exec-ready"
	// msgTerminal carries the container's terminal master (SCM_RIGHTS),
	// child to parent, when the spec asks for a terminal.
	msgTerminal msgType = "terminal"
	// msgError reports a failed step, child to parent.
	msgError msgType = "error"
)

type message struct {
	Type  msgType     `json:"type"`
	Spec  *specs.Spec `json:"spec,omitempty"`
	Error *InitError  `json:"error,omitempty"`
	// Exec is the process of an exec (msgSpec of an exec only).
	Exec *execProcess `json:"exec,omitempty"`
	// Seccomp is the compiled filter of Spec.Linux.Seccomp, with msgSpec.
	Seccomp *SeccompFilter `json:"seccomp,omitempty"`
}

// syncPipe is one end of the sync socket with its JSON framing.
type syncPipe struct {
	enc *json.Encoder
	dec *json.Decoder
}

func newSyncPipe(rw io.ReadWriter) *syncPipe {
	return &syncPipe{enc: json.NewEncoder(rw), dec: json.NewDecoder(rw)}
}

// liteMessage is a message without its spec, and its wire form whenever
// it carries none: json's type setup for the specs.Spec tree costs a fresh
// process over half a millisecond (measured), which the init and exec
// stages would otherwise pay to send exec-ready, and the exec stage to
// read its process.
type liteMessage struct {
	Type    msgType        `json:"type"`
	Error   *InitError     `json:"error,omitempty"`
	Exec    *execProcess   `json:"exec,omitempty"`
	Seccomp *SeccompFilter `json:"seccomp,omitempty"`
}

func (p *syncPipe) send(m message) error {
	var v any = m
	if m.Spec == nil {
		v = liteMessage{Type: m.Type, Error: m.Error, Exec: m.Exec, Seccomp: m.Seccomp}
	}
	if err := p.enc.Encode(v); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// recv reads the next message; io.EOF is returned unwrapped so callers can
// tell a closed socket from a broken one.
func (p *syncPipe) recv() (message, error) {
	var m message
	if err := p.dec.Decode(&m); err != nil {
		if err == io.EOF {
			return m, io.EOF
		}
		return m, fmt.Errorf("receive sync message: %w", err)
	}
	return m, nil
}

// jsonLine is m as the encoder frames it, for sendFd.
func jsonLine(m message) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(liteMessage{Type: m.Type, Error: m.Error}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// expectLite is expect for a message that carries no spec.
func (p *syncPipe) expectLite(want msgType) (liteMessage, error) {
	var m liteMessage
	if err := p.dec.Decode(&m); err != nil {
		if err == io.EOF {
			return m, fmt.Errorf("wait for %s message: parent closed the sync socket", want)
		}
		return m, fmt.Errorf("receive sync message: %w", err)
	}
	if m.Type != want {
		return m, fmt.Errorf("wait for %s message: got %s", want, m.Type)
	}
	return m, nil
}

// expect reads the next message and fails unless it has type want.
func (p *syncPipe) expect(want msgType) (message, error) {
	m, err := p.recv()
	if err != nil {
		if err == io.EOF {
			return m, fmt.Errorf("wait for %s message: parent closed the sync socket", want)
		}
		return m, err
	}
	if m.Type != want {
		return m, fmt.Errorf("wait for %s message: got %s", want, m.Type)
	}
	return m, nil
}
