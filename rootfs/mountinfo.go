package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mountEntry is the part of a /proc/self/mountinfo line we need.
type mountEntry struct {
	target  string
	fstype  string
	options string // super block options, e.g. "rw,lowerdir=...,upperdir=..."
}

// readMountinfo parses /proc/self/mountinfo.
func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		e, err := parseMountinfoLine(sc.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// parseMountinfoLine parses one line of mountinfo (proc(5)):
// id parent major:minor root target options [optional...] - fstype source superopts
func parseMountinfoLine(line string) (mountEntry, error) {
	fields := strings.Fields(line)
	sep := -1
	for i, f := range fields {
		if f == "-" && i >= 6 {
			sep = i
			break
		}
	}
	if sep < 0 || len(fields) < sep+4 {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q", line)
	}
	return mountEntry{
		target:  unescapeOctal(fields[4]),
		fstype:  fields[sep+1],
		options: unescapeOctal(fields[sep+3]),
	}, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline
// and backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hasOption reports whether the comma-separated options contain opt.
func hasOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
