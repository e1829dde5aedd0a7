package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrUnknownUser is returned when a user or group name is not in the
// container's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unknown user or group")

// ResolveUser turns a user as images and pods name it — "uid", "name",
// "uid:gid", "name:group", "uid:group" — into the ids the container runs
// with, looking names up in the container's own /etc/passwd and /etc/group
// (resolved inside rootfs). The supplementary groups are the user's
// memberships in /etc/group plus extra.
func ResolveUser(rootfs, user string, extra []uint32) (specs.User, error) {
	name, group, hasGroup := strings.Cut(user, ":")
	if name == "" {
		name = "0"
	}
	passwd, err := readEntries(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	groups, err := readEntries(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}

	var u specs.User
	userName := ""
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(uid)
		// A numeric uid runs even if /etc/passwd does not know it; its
		// primary group is the passwd entry's, else 0.
		for _, e := range passwd {
			if len(e) > 3 && e[2] == name {
				userName = e[0]
				if gid, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					u.GID = uint32(gid)
				}
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if len(e) > 3 && e[0] == name {
				uid, err1 := strconv.ParseUint(e[2], 10, 32)
				gid, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 != nil || err2 != nil {
					return specs.User{}, fmt.Errorf("bad /etc/passwd entry for %q", name)
				}
				u.UID, u.GID, userName, found = uint32(uid), uint32(gid), name, true
				break
			}
		}
		if !found {
			return specs.User{}, fmt.Errorf("user %q: %w", name, ErrUnknownUser)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(groups, group)
		if err != nil {
			return specs.User{}, err
		}
		u.GID = gid
	}

	seen := map[uint32]bool{u.GID: true}
	if userName != "" {
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			for _, member := range strings.Split(e[3], ",") {
				if member != userName {
					continue
				}
				if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil && !seen[uint32(gid)] {
					seen[uint32(gid)] = true
					u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
				}
			}
		}
	}
	for _, gid := range extra {
		if !seen[gid] {
			seen[gid] = true
			u.AdditionalGids = append(u.AdditionalGids, gid)
		}
	}
	return u, nil
}

func lookupGroup(groups [][]string, group string) (uint32, error) {
	if gid, err := strconv.ParseUint(group, 10, 32); err == nil {
		return uint32(gid), nil
	}
	for _, e := range groups {
		if len(e) > 2 && e[0] == group {
			gid, err := strconv.ParseUint(e[2], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("bad /etc/group entry for %q", group)
			}
			return uint32(gid), nil
		}
	}
	return 0, fmt.Errorf("group %q: %w", group, ErrUnknownUser)
}

// readEntries reads a colon-separated database (passwd, group) from inside
// rootfs. A missing file is an empty database.
func readEntries(rootfs, name string) ([][]string, error) {
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
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}
