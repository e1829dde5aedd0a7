package framework

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/<pid>/mountinfo.
type Mount struct {
	ID         int
	Root       string // root of the mount within its filesystem
	MountPoint string
	FSType     string
	Source     string
	SuperOpts  string
}

// ParseMountinfo parses the contents of a mountinfo file (proc(5)).
func ParseMountinfo(data []byte) ([]Mount, error) {
	var mounts []Mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// parseMountLine parses
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
// six fixed fields, optional fields up to "-", then fstype, source, super options.
func parseMountLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := slices.Index(f, "-")
	if len(f) < 6 || sep < 6 || len(f) < sep+3 {
		return Mount{}, fmt.Errorf("malformed %q", line)
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return Mount{}, fmt.Errorf("mount id in %q: %w", line, err)
	}
	m := Mount{
		ID:         id,
		Root:       unescapeOctal(f[3]),
		MountPoint: unescapeOctal(f[4]),
		FSType:     f[sep+1],
		Source:     unescapeOctal(f[sep+2]),
	}
	if len(f) > sep+3 {
		m.SuperOpts = f[sep+3]
	}
	return m, nil
}

// unescapeOctal undoes the kernel's \NNN escaping of space, tab, newline
// and backslash in mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Mounts returns the mounts of the test process's mount namespace.
func Mounts() ([]Mount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return ParseMountinfo(data)
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	dir = filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// UnmountUnder lazily unmounts every mount at or below dir, deepest first,
// and returns the mounts it found.
func UnmountUnder(dir string) ([]Mount, error) {
	mounts, err := Mounts()
	if err != nil {
		return nil, err
	}
	var found []Mount
	for _, m := range mounts {
		if under(m.MountPoint, dir) {
			found = append(found, m)
		}
	}
	// Later mounts can stack on earlier ones; deeper paths hide in shallower.
	slices.SortStableFunc(found, func(a, b Mount) int {
		if d := strings.Count(b.MountPoint, "/") - strings.Count(a.MountPoint, "/"); d != 0 {
			return d
		}
		return b.ID - a.ID
	})
	for _, m := range found {
		if err := unix.Unmount(m.MountPoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return found, fmt.Errorf("unmount %s: %w", m.MountPoint, err)
		}
	}
	return found, nil
}
