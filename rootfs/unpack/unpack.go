package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	xattrPAXPrefix   = "SCHILY.xattr."
	overlayXattrPref = "trusted.overlay."
	opaqueXattr      = "trusted.overlay.opaque"
)

// ErrUnsupported is returned for tar entries that cannot be represented in a
// layer directory (for example unknown entry types).
var ErrUnsupported = errors.New("unsupported tar entry")

// Apply extracts the tar stream r into dir, which must be an existing
// directory that nothing else writes to while Apply runs (normally a fresh
// temporary directory). It stops early when ctx is cancelled. On error dir
// is left partially populated; the caller discards it.
func Apply(ctx context.Context, dir string, r io.Reader) error {
	rootFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open layer dir %q: %w", dir, err)
	}
	root := os.NewFile(uintptr(rootFd), dir)
	defer root.Close()

	a := &applier{root: root}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar header: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("apply %q: %w", hdr.Name, err)
		}
	}
	return a.finishDirs()
}

// applier holds the state of one Apply call.
type applier struct {
	root *os.File
	// buf is the copy buffer of regular files, one per Apply.
	buf []byte
	// dirs records directory mtimes, applied after all entries because
	// creating children changes them.
	dirs []dirTime
}

type dirTime struct {
	name         string
	atime, mtime unix.Timespec
}

// cleanName maps a tar entry name to a path relative to the layer root.
// Leading "/" and ".." are clamped lexically, as if the root were "/".
// The empty string means the root itself.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name := cleanName(hdr.Name)
	if name == "" {
		// The layer root's own metadata belongs to the snapshot, not to
		// one layer.
		return nil
	}
	parentName, base := splitName(name)

	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}

	parent, err := pathrs.MkdirAllHandle(a.root, parentName, 0o755)
	if err != nil {
		return fmt.Errorf("resolve parent %q: %w", parentName, err)
	}
	defer parent.Close()
	pfd := int(parent.Fd())

	if strings.HasPrefix(base, whiteoutPrefix) {
		return whiteout(parent, base)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := prepareTarget(pfd, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir: %w", err)
		}
	case tar.TypeReg:
		if err := prepareTarget(pfd, base, false); err != nil {
			return err
		}
		if a.buf == nil {
			a.buf = make([]byte, sparseChunk)
		}
		if err := writeFile(pfd, base, r, a.buf); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := prepareTarget(pfd, base, false); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		if err := prepareTarget(pfd, base, false); err != nil {
			return err
		}
		// A hard link carries the metadata of its target; nothing more to do.
		return a.hardlink(pfd, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := prepareTarget(pfd, base, false); err != nil {
			return err
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, nodeType(hdr.Typeflag)|0o600, dev); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		return fmt.Errorf("%w: type %q", ErrUnsupported, hdr.Typeflag)
	}

	if err := setMetadata(pfd, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTime{name: name, atime: timespec(hdr.AccessTime, hdr), mtime: timespec(hdr.ModTime, hdr)})
	}
	return nil
}

// whiteout converts an OCI whiteout entry into the overlay representation.
func whiteout(parent *os.File, base string) error {
	switch {
	case base == whiteoutOpaque:
		dir, err := pathrs.Reopen(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if err != nil {
			return fmt.Errorf("open opaque dir: %w", err)
		}
		defer dir.Close()
		if err := unix.Fsetxattr(int(dir.Fd()), opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("set opaque xattr: %w", err)
		}
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) has no meaning here.
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("%w: whiteout %q names no file", ErrUnsupported, base)
	}
	pfd := int(parent.Fd())
	if err := prepareTarget(pfd, target, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout for %q: %w", target, err)
	}
	return nil
}

// prepareTarget removes whatever exists at base in the directory pfd so
// that a new entry can be created there. An existing directory is kept when
// the new entry is a directory too (tar semantics: later entries update it).
func prepareTarget(pfd int, base string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat existing: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return fmt.Errorf("remove existing: %w", err)
		}
		return nil
	}
	if isDir {
		return nil
	}
	// os.RemoveAll walks with openat(O_NOFOLLOW), and the magic link pins
	// the already-resolved parent, so this stays inside the layer.
	if err := os.RemoveAll(fdPath(pfd, base)); err != nil {
		return fmt.Errorf("remove existing directory: %w", err)
	}
	return nil
}

func writeFile(pfd int, base string, r io.Reader, buf []byte) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	if err := copySparse(f, r, buf); err != nil {
		f.Close()
		return fmt.Errorf("write file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close file: %w", err)
	}
	return nil
}

// hardlink links base (in pfd) to linkname, which is resolved inside the
// root like any other entry name. linkat without AT_SYMLINK_FOLLOW links a
// final symlink itself, never what it points to.
// sparseChunk is the unit copySparse reads and checks for zeros: a
// filesystem block multiple, so skipped chunks become holes.
const sparseChunk = 64 << 10

// zeroChunk is compared against, never written.
var zeroChunk [sparseChunk]byte

// copySparse copies r to the new file f, seeking over chunks that are all
// zeros instead of writing them, and sets the size at the end. archive/tar
// expands the holes of sparse entries into zeros as it reads, so a plain
// copy would write a hostile layer's 1 TiB "file" of four data bytes out in
// full and fill the disk; this keeps the space a file takes proportional to
// the data it has.
func copySparse(f *os.File, r io.Reader, buf []byte) error {
	var size int64
	for {
		// Fill the chunk; io.ReadFull would turn a truncated entry's
		// io.ErrUnexpectedEOF into a normal end.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			chunk := buf[:n]
			if bytes.Equal(chunk, zeroChunk[:n]) {
				if _, serr := f.Seek(int64(n), io.SeekCurrent); serr != nil {
					return serr
				}
			} else if _, werr := f.Write(chunk); werr != nil {
				return werr
			}
			size += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return f.Truncate(size)
}

func (a *applier) hardlink(pfd int, base, linkname string) error {
	target := cleanName(linkname)
	if target == "" {
		return fmt.Errorf("%w: hard link to the layer root", ErrUnsupported)
	}
	targetParent, targetBase := splitName(target)
	tp, err := pathrs.OpenatInRoot(a.root, targetParent)
	if err != nil {
		return fmt.Errorf("resolve link target %q: %w", linkname, err)
	}
	defer tp.Close()
	if err := unix.Linkat(int(tp.Fd()), targetBase, pfd, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", linkname, err)
	}
	return nil
}

// setMetadata applies ownership, xattrs, mode and (for non-directories)
// times. Order matters: chown clears set-id bits, so chmod comes after it.
func setMetadata(pfd int, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, xattrPAXPrefix)
		if !ok || strings.HasPrefix(attr, overlayXattrPref) {
			// trusted.overlay.* from a layer could forge overlay
			// metadata (redirects, metacopy); never honour it.
			continue
		}
		err := unix.Lsetxattr(fdPath(pfd, base), attr, []byte(value), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %q: %w", attr, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// base was created by this entry and is not a symlink, so the
		// following fchmodat cannot be redirected.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{timespec(hdr.AccessTime, hdr), timespec(hdr.ModTime, hdr)}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times: %w", err)
		}
	}
	return nil
}

// finishDirs sets directory times once every child exists. Directories are
// looked up again inside the root; one replaced by a later entry only gets
// its replacement's times touched, never anything outside.
func (a *applier) finishDirs() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		parentName, base := splitName(d.name)
		parent, err := pathrs.OpenatInRoot(a.root, parentName)
		if err != nil {
			return fmt.Errorf("reopen parent of %q: %w", d.name, err)
		}
		err = unix.UtimesNanoAt(int(parent.Fd()), base, []unix.Timespec{d.atime, d.mtime}, unix.AT_SYMLINK_NOFOLLOW)
		parent.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("set times of %q: %w", d.name, err)
		}
	}
	return nil
}

// timespec converts t, falling back to the entry's modification time when
// the header carries no such time (most layers have no access times).
func timespec(t time.Time, hdr *tar.Header) unix.Timespec {
	if t.IsZero() {
		t = hdr.ModTime
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// nodeType maps a device or fifo entry type to its S_IF* bits.
func nodeType(typeflag byte) uint32 {
	switch typeflag {
	case tar.TypeChar:
		return unix.S_IFCHR
	case tar.TypeBlock:
		return unix.S_IFBLK
	default:
		return unix.S_IFIFO
	}
}

// splitName splits a cleaned name into its parent ("." for the root) and
// final component.
func splitName(name string) (parent, base string) {
	parent, base = path.Split(name)
	if parent == "" {
		parent = "."
	}
	return parent, base
}

// fdPath names base inside the directory open as fd, for the syscalls that
// have no *at form (lsetxattr, RemoveAll).
func fdPath(fd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
}
