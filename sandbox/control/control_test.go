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
