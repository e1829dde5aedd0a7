package control

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitRecord(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadExit(dir, "c1"); ok || err != nil {
		t.Fatalf("ReadExit before any exit: ok=%v err=%v", ok, err)
	}
	want := Exit{Pid: 42, Code: 137, Signal: 9, FinishedAt: 12345}
	if err := WriteExit(dir, "c1", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadExit(dir, "c1")
	if err != nil || !ok || got != want {
		t.Fatalf("ReadExit = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	// No temp files are left next to the record.
	entries, _ := os.ReadDir(filepath.Dir(ExitPath(dir, "c1")))
	if len(entries) != 1 {
		t.Errorf("exit dir holds %d entries, want 1", len(entries))
	}
}

// TestCallLongSocketPath checks that a socket deeper than sockaddr_un
// allows is still reached: pod directories have 64-hex ids.
func TestCallLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 64))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := SocketPath(dir)
	if len(sock) <= maxSunPath {
		t.Fatalf("test path too short: %d", len(sock))
	}
	cwd, _ := os.Getwd()
	// Listen binds relative to the working directory, as the pod init does.
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen()
	os.Chdir(cwd)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var req Request
		_ = json.NewDecoder(conn).Decode(&req)
		_ = json.NewEncoder(conn).Encode(Response{Pid: 7, Error: map[bool]string{true: "boom"}[req.Op == "fail"]})
	}()
	resp, err := Call(context.Background(), sock, Request{Op: OpPing})
	if err != nil || resp.Pid != 7 {
		t.Fatalf("Call = %+v, %v", resp, err)
	}
}

func TestCallNotRunning(t *testing.T) {
	_, err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), Request{Op: OpPing})
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
	var ne *net.OpError
	if !errors.As(err, &ne) {
		t.Errorf("err %v does not keep the dial error", err)
	}
}

// socketPair returns both ends of a connected unix stream socket pair.
func socketPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestReadFilesPassesDescriptors checks a message and its descriptors
// arrive together, with what was sent after the message kept.
func TestReadFilesPassesDescriptors(t *testing.T) {
	a, b := socketPair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := SendFiles(a, Response{Pid: 7}, []*os.File{w}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	line, fds, rest, err := ReadFiles(b)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseFds(fds)
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil || resp.Pid != 7 {
		t.Fatalf("message %q: %+v, %v", line, resp, err)
	}
	if len(fds) != 1 {
		t.Fatalf("got %d descriptors, want 1", len(fds))
	}
	// The passed descriptor is the pipe's write end.
	passed := os.NewFile(uintptr(fds[0]), "passed")
	fds = nil
	defer passed.Close()
	if _, err := passed.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := r.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read through the passed descriptor: %q %v", buf, err)
	}
	if string(rest) != "next" && len(rest) != 0 {
		t.Errorf("rest = %q, want what followed the message (or nothing yet)", rest)
	}
}

// TestReadFilesBoundsMessages checks that a peer that never ends its line
// is cut off instead of growing the reader.
func TestReadFilesBoundsMessages(t *testing.T) {
	a, b := socketPair(t)
	go func() {
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = 'a'
		}
		for range 2 * maxMessage / len(chunk) {
			if _, err := a.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, _, _, err := ReadFiles(b); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("ReadFiles of an endless line: %v, want a length error", err)
	}
}
