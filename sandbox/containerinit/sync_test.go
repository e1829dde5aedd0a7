package containerinit

import (
	"errors"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRunParent drives the parent's half of the protocol against a fake
// child on the other end of a socketpair.
func TestRunParent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []message
		wantErr error // nil: success
	}{
		{"exec ready then EOF", []message{{Type: msgExecReady}}, nil},
		{"EOF without a word", nil, ErrInitExited},
		{"step failed", []message{{Type: msgError, Error: &InitError{Step: "resolve executable", Message: "x", Kind: kindExecutableNotFound}}}, ErrExecutableNotFound},
		{"execve failed after ready", []message{{Type: msgExecReady}, {Type: msgError, Error: &InitError{Step: "exec", Message: "execve: permission denied"}}}, &InitError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
			t.Cleanup(func() { parent.Close() })

			spec := &specs.Spec{Version: "test"}
			done := make(chan error, 1)
			go func() {
				defer child.Close()
				p := newSyncPipe(child)
				m, err := p.expect(msgSpec)
				if err == nil && m.Spec.Version != "test" {
					err = errors.New("spec did not cross the socket")
				}
				if err == nil {
					_, err = p.expect(msgCgroupJoined)
				}
				for _, r := range tc.replies {
					if err == nil {
						err = p.send(r)
					}
				}
				done <- err
			}()
			err = runParent(newSyncPipe(parent), 0, StartOptions{Spec: spec}, nil)
			if childErr := <-done; childErr != nil {
				t.Fatalf("fake child: %v", childErr)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Errorf("runParent = %v, want success", err)
				}
			case *InitError:
				var ie *InitError
				if !errors.As(err, &ie) {
					t.Errorf("runParent = %v, want an InitError", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("runParent = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestInitErrorKinds(t *testing.T) {
	ie := newInitError("resolve executable", &wrapped{ErrExecutableNotFound})
	if !errors.Is(ie, ErrExecutableNotFound) || errors.Is(ie, ErrInvalidSpec) {
		t.Errorf("InitError %+v matches the wrong sentinels", ie)
	}
	if got := ie.Error(); got != "resolve executable: wrapped: executable file not found in $PATH" {
		t.Errorf("InitError.Error() = %q", got)
	}
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }
