package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// ErrNoBusybox is returned when the busybox binary to build from is missing.
// Callers skip the tests that need the image (hack/install-deps.sh installs
// busybox-static).
var ErrNoBusybox = errors.New("busybox binary not found")

// epoch is the modification time of every file in the layer, so that the
// layer digest depends only on the busybox binary.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Volume is the one path the image's config declares as a volume (it is
// not in the layer: the runtime makes it).
const Volume = "/data/volume"

// Env is the environment of the image's config.
var Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

const passwd = `root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
cubby:x:1000:1000:cubby:/tmp:/bin/sh
`

// group makes cubby a member of cubbyextra: tests of supplementary groups
// see the image's memberships merged (or, with policy Strict, not).
const group = `root:x:0:
nogroup:x:65534:
cubby:x:1000:
cubbyextra:x:2000:cubby
`

// Build assembles the single-layer busybox image from the static busybox
// binary at path (DefaultBusybox when empty). It returns ErrNoBusybox when
// the binary does not exist.
func Build(path string) (v1.Image, error) {
	if path == "" {
		path = DefaultBusybox
	}
	bin, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %q: %w", path, ErrNoBusybox)
	}
	if err != nil {
		return nil, fmt.Errorf("read busybox %q: %w", path, err)
	}
	applets, err := listApplets(path)
	if err != nil {
		return nil, err
	}
	layerTar, err := buildLayer(bin, applets)
	if err != nil {
		return nil, fmt.Errorf("build busybox layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("make busybox layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append busybox layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Env = append([]string(nil), Env...)
	cfg.Config.Volumes = map[string]struct{}{Volume: {}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	return img, nil
}

// listApplets returns the applet names that the busybox at path provides.
func listApplets(path string) ([]string, error) {
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %q: %w", path, err)
	}
	var applets []string
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" || strings.ContainsRune(name, '/') {
			continue
		}
		applets = append(applets, name)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("list applets of %q: no applets", path)
	}
	return applets, nil
}

// buildLayer writes the uncompressed layer tar.
func buildLayer(busybox []byte, applets []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755},
		{"dev/", 0o755},
		{"etc/", 0o755},
		{"proc/", 0o555},
		{"root/", 0o700},
		{"sys/", 0o555},
		{"tmp/", 0o1777},
		{"var/", 0o755},
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(header(d.name, tar.TypeDir, d.mode, 0)); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "bin/busybox", 0o755, busybox); err != nil {
		return nil, err
	}
	// Hard links, as in the upstream busybox images: a path masked or
	// bound over (/bin/ls) is the applet, not busybox behind a symlink.
	for _, a := range applets {
		h := header("bin/"+a, tar.TypeLink, 0o755, 0)
		h.Linkname = "bin/busybox"
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "etc/passwd", 0o644, []byte(passwd)); err != nil {
		return nil, err
	}
	if err := writeFile(tw, "etc/group", 0o644, []byte(group)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Size:     size,
		ModTime:  epoch,
		Uname:    "root",
		Gname:    "root",
		Format:   tar.FormatPAX,
	}
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(header(name, tar.TypeReg, mode, int64(len(data)))); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
