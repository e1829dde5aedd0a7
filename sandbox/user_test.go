package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n")
	write("group", "root:x:0:\nwww-data:x:33:\nalice:x:1000:\nstaff:x:50:alice,bob\nvideo:x:44:alice\n")

	tests := []struct {
		user    string
		extra   []uint32
		strict  bool
		want    specs.User
		wantErr error
	}{
		{user: "", want: specs.User{AdditionalGids: []uint32{0}}},
		{user: "0", want: specs.User{AdditionalGids: []uint32{0}}},
		{user: "www-data", want: specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{33}}},
		{user: "1000", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 44}}},
		{user: "alice:staff", want: specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50, 44}}},
		{user: "1002", want: specs.User{UID: 1002, GID: 0, AdditionalGids: []uint32{0}}},
		{user: "1003:44", extra: []uint32{7}, want: specs.User{UID: 1003, GID: 44, AdditionalGids: []uint32{44, 7}}},
		{user: "1000", extra: []uint32{7, 1000, 44}, want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 44, 7}}},
		{user: "1000", strict: true, extra: []uint32{7}, want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 7}}},
		{user: "alice:44", strict: true, want: specs.User{UID: 1000, GID: 44, AdditionalGids: []uint32{44}}},
		{user: "nobody", wantErr: ErrUnknownUser},
		{user: "alice:nogroup", wantErr: ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := ResolveUser(root, tt.user, UserOptions{Extra: tt.extra, Strict: tt.strict})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.User, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUserSymlinkEscape(t *testing.T) {
	root := t.TempDir()
	// A hostile image pointing /etc at the host's must not make us read it.
	if err := os.Symlink("/etc", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../etc", filepath.Join(root, "etc2")); err != nil {
		t.Fatal(err)
	}
	if u, err := ResolveUser(root, "root", UserOptions{}); err == nil {
		t.Fatalf("resolved %+v through a symlink out of the rootfs", u)
	}
	if err := os.Remove(filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "etc2"), filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if u, err := ResolveUser(root, "root", UserOptions{}); err == nil {
		t.Fatalf("resolved %+v through a relative symlink out of the rootfs", u)
	}
}
