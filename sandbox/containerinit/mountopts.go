package containerinit

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is an OCI mount's option list split into what mount(2) takes.
type mountOptions struct {
	// flags are the MS_* flags for the mount itself.
	flags uintptr
	// propagation are MS_SHARED/MS_SLAVE/... (plus MS_REC), applied with a
	// separate mount(2) call after the mount, as the kernel requires.
	propagation uintptr
	// data is the comma-joined list of filesystem-specific options.
	data string
	// bind is set for "bind" and "rbind".
	bind bool
	// recursiveRO ("rro") makes the mount and every submount read-only
	// with mount_setattr(2).
	recursiveRO bool
	// sourceID is the identity a bind source had at create time
	// (SourceIDOption), empty when not recorded.
	sourceID string
}

// flagOption is a mount option that sets (clear == false) or clears a flag.
type flagOption struct {
	clear bool
	flag  uintptr
}

var mountFlagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits OCI mount options into flags, propagation and
// filesystem data. Later options win over earlier ones ("ro,rw" is rw).
func parseMountOptions(options []string) mountOptions {
	var mo mountOptions
	var data []string
	for _, o := range options {
		if f, ok := mountFlagOptions[o]; ok {
			if f.clear {
				mo.flags &^= f.flag
			} else {
				mo.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			mo.propagation = p
			continue
		}
		if o == "rro" {
			mo.recursiveRO = true
			continue
		}
		if v, ok := strings.CutPrefix(o, sourceIDOption); ok {
			mo.sourceID = v
			continue
		}
		if strings.HasPrefix(o, "x-") {
			// Userspace-only options (as mount(8) has them): never
			// passed to the kernel.
			continue
		}
		data = append(data, o)
	}
	mo.bind = mo.flags&unix.MS_BIND != 0
	mo.data = strings.Join(data, ",")
	return mo
}

// propagationFlag maps a propagation name such as "rslave" to its flags.
func propagationFlag(name string) (uintptr, error) {
	p, ok := propagationOptions[name]
	if !ok {
		return 0, fmt.Errorf("%w: unknown mount propagation %q", ErrInvalidSpec, name)
	}
	return p, nil
}

// remountFlags are the per-mount flags a bind remount must restate or lose.
const remountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// statfsToMountFlags maps the ST_* flags statfs(2) reports for a mount to the
// MS_* flags mount(2) takes, so that a remount can keep them.
func statfsToMountFlags(st uint64) uintptr {
	var f uintptr
	for _, m := range []struct {
		st uint64
		ms uintptr
	}{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st&m.st != 0 {
			f |= m.ms
		}
	}
	return f
}
