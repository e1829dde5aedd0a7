package containerinit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountAttr(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    uintptr
		set, clr uint64
	}{
		{"none", 0, 0, 0},
		{"ro nosuid nodev noexec", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
			unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, 0},
		{"noatime replaces the atime mode", unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR__ATIME},
		{"strictatime", unix.MS_STRICTATIME | unix.MS_NODIRATIME, unix.MOUNT_ATTR_STRICTATIME | unix.MOUNT_ATTR_NODIRATIME, unix.MOUNT_ATTR__ATIME},
		{"bind is not an attribute", unix.MS_BIND | unix.MS_REC, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mountAttr(tc.flags)
			if got.Attr_set != tc.set || got.Attr_clr != tc.clr {
				t.Errorf("mountAttr(%#x) = set %#x clr %#x, want set %#x clr %#x", tc.flags, got.Attr_set, got.Attr_clr, tc.set, tc.clr)
			}
		})
	}
}

func TestParseSourceID(t *testing.T) {
	opt := SourceIDOption(2049, 77)
	mo := parseMountOptions([]string{"rbind", opt})
	id, err := parseSourceID(mo.sourceID)
	if err != nil || id != (sourceID{2049, 77}) {
		t.Errorf("parseSourceID(%q) = %v, %v", mo.sourceID, id, err)
	}
	for _, bad := range []string{"", "1", "1:", ":2", "a:b", "1:2:3"} {
		if _, err := parseSourceID(bad); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("parseSourceID(%q) = %v, want ErrInvalidSpec", bad, err)
		}
	}
}

// TestOpenBindSource swaps a source the way a hostile sibling would and
// checks that the swap is refused, not followed.
func TestOpenBindSource(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	other := filepath.Join(base, "other")
	for _, d := range []string{src, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		t.Fatal(err)
	}
	want := &sourceID{st.Dev, st.Ino}
	f, err := openBindSource(src, want)
	if err != nil {
		t.Fatalf("unchanged source: %v", err)
	}
	f.Close()

	if err := os.Rename(src, src+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, src); err != nil {
		t.Fatal(err)
	}
	if _, err := openBindSource(src, want); !errors.Is(err, ErrBindSourceChanged) {
		t.Errorf("source swapped for a symlink: %v, want ErrBindSourceChanged", err)
	}
	// cubby's own sources carry no pin and are opened as they are.
	if f, err := openBindSource(src, nil); err != nil {
		t.Errorf("symlinked source without an id: %v", err)
	} else {
		f.Close()
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, src); err != nil {
		t.Fatal(err)
	}
	if _, err := openBindSource(src, want); !errors.Is(err, ErrBindSourceChanged) {
		t.Errorf("source replaced by another directory: %v, want ErrBindSourceChanged", err)
	}
}

func TestOpenInRootRefusesMagicLinks(t *testing.T) {
	root, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := openInRoot(root, "/proc/self/root/etc"); !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.EXDEV) {
		t.Errorf("openInRoot through /proc/self/root: %v, want ELOOP", err)
	}
	f, err := openInRoot(root, "/proc/self/status")
	if err != nil {
		t.Fatalf("openInRoot of a plain procfs file: %v", err)
	}
	f.Close()
}

func TestProcFiles(t *testing.T) {
	b, err := readProcFile("self/oom_score_adj")
	if err != nil || len(b) == 0 {
		t.Fatalf("readProcFile(self/oom_score_adj) = %q, %v", b, err)
	}
	if _, err := readProcFile("self/root/etc/hostname"); err == nil {
		t.Error("readProcFile followed the magic link self/root")
	}
	if _, err := readProcFile("../etc/hostname"); err == nil {
		t.Error("readProcFile left /proc")
	}
}
