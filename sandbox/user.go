package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrUnknownUser is returned when a user or group name is not in the
// container's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unknown user or group")

// maxDBSize bounds how much of an image's /etc/passwd or /etc/group is read.
const maxDBSize = 16 << 20

// UserOptions says how ResolveUser picks the supplementary groups.
type UserOptions struct {
	// Extra are supplementary groups to add (the pod's
	// supplemental_groups).
	Extra []uint32
	// Strict leaves out the user's memberships in the image's /etc/group
	// (supplemental_groups_policy Strict); by default they are merged.
	Strict bool
}

// ResolvedUser is who a container runs as.
type ResolvedUser struct {
	specs.User
	// Home is the user's home directory from /etc/passwd, "/" if unknown.
	Home string
}

// ResolveUser turns a user as images and pods name it — "uid", "name",
// "uid:gid", "name:group", "uid:group" — into the ids the container runs
// with, looking names up in the container's own /etc/passwd and /etc/group
// (resolved inside rootfs) with github.com/moby/sys/user, as runc does. A
// numeric uid need not be in /etc/passwd; its primary group is then 0.
// The supplementary groups are the primary group, the user's memberships in
// /etc/group (unless opts.Strict) and opts.Extra.
func ResolveUser(rootfs, spec string, opts UserOptions) (ResolvedUser, error) {
	passwd, err := readDB(rootfs, "/etc/passwd")
	if err != nil {
		return ResolvedUser{}, err
	}
	group, err := readDB(rootfs, "/etc/group")
	if err != nil {
		return ResolvedUser{}, err
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, reader(passwd), reader(group))
	if err != nil {
		if errors.Is(err, user.ErrNoPasswdEntries) || errors.Is(err, user.ErrNoGroupEntries) {
			return ResolvedUser{}, fmt.Errorf("%w: %v", ErrUnknownUser, err)
		}
		return ResolvedUser{}, fmt.Errorf("user %q: %w", spec, err)
	}
	// The primary group is a supplementary group too, as containerd makes
	// it: a process that changes its gid keeps it.
	out := ResolvedUser{User: specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), AdditionalGids: []uint32{uint32(eu.Gid)}}, Home: eu.Home}
	add := func(gid uint32) {
		if !slices.Contains(out.AdditionalGids, gid) {
			out.AdditionalGids = append(out.AdditionalGids, gid)
		}
	}
	if !opts.Strict && passwd != nil && group != nil {
		// Memberships count whether or not the group was given
		// explicitly (GetExecUser only lists them for "user" alone).
		users, err := user.ParsePasswdFilter(bytes.NewReader(passwd), func(u user.User) bool { return u.Uid == eu.Uid })
		if err == nil && len(users) > 0 {
			name := users[0].Name
			groups, err := user.ParseGroupFilter(bytes.NewReader(group), func(g user.Group) bool { return slices.Contains(g.List, name) })
			if err != nil {
				return ResolvedUser{}, fmt.Errorf("read groups of %q: %w", name, err)
			}
			for _, g := range groups {
				add(uint32(g.Gid))
			}
		}
	}
	for _, gid := range opts.Extra {
		add(gid)
	}
	return out, nil
}

// reader is nil (no database) for a missing file.
func reader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// readDB reads a database file (passwd, group) from inside rootfs; a
// missing file is nil.
func readDB(rootfs, name string) ([]byte, error) {
	path, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", name, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDBSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
