package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// A session is a call that outlives its first answer: exec and attach.
//
//	cubbyd                            cubby-pod
//	  │── Request{Op:"exec"} ────────────▶│ fork the exec stage
//	  │◀── Response{Pid, Files} + fds ────│ (SCM_RIGHTS: pipe ends / terminal)
//	  │     ... cubbyd copies the streams through the fds ...
//	  │── (optional) shutdown(SHUT_WR) ──▶│ exec: kill the process tree
//	  │◀───────── Response{Exit} ─────────│ when the process has exited
//
// Closing the connection early is the same as the shutdown: a session
// never leaves an exec running without a caller.

// Session is the caller's end of a session.
type Session struct {
	conn *net.UnixConn
	dec  *json.Decoder
	// First is the first answer.
	First Response
	// Files are the descriptors that came with it, by name (FileStdin …).
	Files map[string]*os.File
}

// maxPassedFds bounds the descriptors one answer may carry.
const maxPassedFds = 4

// maxMessage bounds one message of ReadFiles, so that a peer that never
// ends its line cannot grow the reader without limit.
const maxMessage = 1 << 20

// Open sends req to the pod init on socket and returns the session once the
// first answer and its descriptors have arrived. ctx bounds only the opening.
func Open(ctx context.Context, socket string, req Request) (*Session, error) {
	conn, err := Dial(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	s, err := openSession(conn, req)
	if !stop() || err != nil {
		conn.Close()
		for _, f := range s.files() {
			f.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

func openSession(conn *net.UnixConn, req Request) (*Session, error) {
	s := &Session{conn: conn}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return s, fmt.Errorf("send %s: %w", req.Op, err)
	}
	line, fds, rest, err := ReadFiles(conn)
	if err != nil {
		return s, fmt.Errorf("%s: read answer: %w", req.Op, err)
	}
	fail := func(err error) (*Session, error) {
		CloseFds(fds)
		return s, err
	}
	if err := json.Unmarshal(line, &s.First); err != nil {
		return fail(fmt.Errorf("%s: decode answer: %w", req.Op, err))
	}
	if s.First.Error != "" {
		return fail(errors.New(s.First.Error))
	}
	if len(fds) != len(s.First.Files) {
		return fail(fmt.Errorf("%s: answer names %d descriptors but carries %d", req.Op, len(s.First.Files), len(fds)))
	}
	s.Files = make(map[string]*os.File, len(fds))
	for j, name := range s.First.Files {
		// Non-blocking descriptors are served by the runtime poller, so
		// reads can be given deadlines and never pin a thread.
		_ = unix.SetNonblock(fds[j], true)
		s.Files[name] = os.NewFile(uintptr(fds[j]), name)
	}
	s.dec = json.NewDecoder(io.MultiReader(bytes.NewReader(rest), conn))
	return s, nil
}

// ReadFiles reads one newline-terminated message from conn with the
// descriptors passed along with it (at most maxPassedFds; the message at
// most maxMessage bytes). It returns the
// message without its newline, the descriptors (close-on-exec; the caller
// owns them), and what was read past the message.
func ReadFiles(conn *net.UnixConn) (line []byte, fds []int, rest []byte, err error) {
	var buf []byte
	chunk := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*maxPassedFds))
	for bytes.IndexByte(buf, '\n') < 0 {
		n, oobn, _, _, err := conn.ReadMsgUnix(chunk, oob)
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			fds = append(fds, got...)
			if perr != nil {
				CloseFds(fds)
				return nil, nil, nil, perr
			}
		}
		buf = append(buf, chunk[:n]...)
		if err == nil && len(buf) > maxMessage && bytes.IndexByte(buf, '\n') < 0 {
			err = fmt.Errorf("message longer than %d bytes", maxMessage)
		}
		if err != nil {
			CloseFds(fds)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, nil, err
		}
		if n == 0 {
			CloseFds(fds)
			return nil, nil, nil, io.ErrUnexpectedEOF
		}
	}
	i := bytes.IndexByte(buf, '\n')
	return buf[:i], fds, buf[i+1:], nil
}

func (s *Session) files() []*os.File {
	if s == nil {
		return nil
	}
	out := make([]*os.File, 0, len(s.Files))
	for _, f := range s.Files {
		out = append(out, f)
	}
	return out
}

// Wait blocks for the session's last answer (an exec's exit).
func (s *Session) Wait() (Response, error) {
	var resp Response
	if err := s.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("wait for the end of the session: %w", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Send sends req within the session (OpCloseStdin).
func (s *Session) Send(req Request) error {
	if err := json.NewEncoder(s.conn).Encode(req); err != nil {
		return fmt.Errorf("send %s: %w", req.Op, err)
	}
	return nil
}

// End tells the pod init to end the session (an exec is killed, with every
// process it started); Wait then returns its exit.
func (s *Session) End() error { return s.conn.CloseWrite() }

// Close closes the connection and every descriptor not taken out of Files.
func (s *Session) Close() {
	s.conn.Close()
	for _, f := range s.Files {
		f.Close()
	}
}

// SendFiles writes msg as one JSON line and passes files with it: the pod
// init's side of a session, and either side of a keeper call.
func SendFiles(conn *net.UnixConn, msg any, files []*os.File) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	n, _, err := conn.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return err
	}
	if n < len(b) {
		_, err = conn.Write(b[n:])
	}
	return err
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse passed descriptors: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range got {
			unix.CloseOnExec(fd)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// CloseFds closes descriptors that ReadFiles returned.
func CloseFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
