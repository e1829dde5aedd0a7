package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"cubby/critest/testimage"
)

// upstreamHosts are the registries critest's image names point at; cubbyd
// is configured to fetch all of them from the loopback registry only.
var upstreamHosts = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"}

// standin is one image critest pulls, rebuilt from Debian's binaries and the
// stand-in program, and pushed under each of its repository:tag names
// (paths as the upstream registries spell them).
type standin struct {
	names []string
	build func(b *imageBuilder) (v1.Image, error)
}

// standins lists every image reference critest v1.37 uses on Linux, except
// test-image-digest, which pins an upstream digest no rebuild can match.
func standins() []standin {
	crt := "k8s-staging-cri-tools/"
	e2e := "e2e-test-images/"
	return []standin{
		{[]string{e2e + "busybox:1.29-2"}, (*imageBuilder).busybox},
		{[]string{e2e + "nginx:1.14-2"}, func(b *imageBuilder) (v1.Image, error) { return b.nginx("80") }},
		{[]string{crt + "hostnet-nginx-amd64:latest"}, func(b *imageBuilder) (v1.Image, error) { return b.nginx("12003") }},
		{[]string{e2e + "httpd:2.4.39-4"}, (*imageBuilder).httpd},
		{[]string{e2e + "nonewprivs:1.3"}, (*imageBuilder).nonewprivs},
		{[]string{crt + "test-image-user-uid:latest"}, func(b *imageBuilder) (v1.Image, error) { return b.user("1002") }},
		{[]string{crt + "test-image-user-username:latest"}, func(b *imageBuilder) (v1.Image, error) { return b.user("www-data") }},
		{[]string{crt + "test-image-user-uid-group:latest"}, func(b *imageBuilder) (v1.Image, error) { return b.user("1003:1004") }},
		{[]string{crt + "test-image-user-username-group:latest"}, func(b *imageBuilder) (v1.Image, error) { return b.user("www-data:www-data") }},
		{[]string{crt + "test-image-predefined-group:latest"}, (*imageBuilder).predefinedGroup},
		// Each name group is its own image (specs check an image's exact
		// repo tags), except tags of one image, which critest expects to
		// be one image.
		{[]string{crt + "test-image-latest:latest"}, distinct("latest")},
		{[]string{crt + "test-image-tag:test"}, distinct("tag-test")},
		{[]string{crt + "test-image-tag:all"}, distinct("tag-all")},
		{[]string{crt + "test-image-tags:1", crt + "test-image-tags:2", crt + "test-image-tags:3"}, distinct("tags")},
		{[]string{crt + "test-image-1:latest"}, distinct("1")},
		{[]string{crt + "test-image-2:latest"}, distinct("2")},
		{[]string{crt + "test-image-3:latest"}, distinct("3")},
		{[]string{"pause:3.9"}, distinct("pause")}, // registry.k8s.io and k8s.gcr.io
	}
}

// imageBuilder builds the stand-ins on top of the busybox test image.
type imageBuilder struct {
	base    v1.Image // busybox-static, root and nobody
	standin []byte   // the static stand-in program
	debian  []testimage.File
}

// Users and groups of the stand-ins, as in the images they replace.
const (
	standinPasswd = `root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`
	standinGroup = `root:x:0:
www-data:x:33:
nogroup:x:65534:
`
)

func newImageBuilder(busybox, standinPath string) (*imageBuilder, error) {
	base, err := testimage.Build(busybox)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	prog, err := os.ReadFile(standinPath)
	if err != nil {
		return nil, fmt.Errorf("read stand-in program: %w", err)
	}
	// Applets critest runs that Debian's busybox-static lacks, and the
	// libraries of them all (busybox may be the dynamic build).
	var debian []testimage.File
	seen := map[string]bool{}
	for _, bin := range []string{"/usr/bin/pgrep", "/usr/bin/ipcs", busybox} {
		files, err := withLibraries(bin)
		if err != nil {
			return nil, err
		}
		if bin == busybox {
			files = files[1:] // the image has busybox itself
		}
		for _, f := range files {
			if !seen[f.Path] {
				seen[f.Path] = true
				debian = append(debian, f)
			}
		}
	}
	return &imageBuilder{base: base, standin: prog, debian: debian}, nil
}

// busybox is e2e-test-images/busybox: busybox plus pgrep and ipcs.
func (b *imageBuilder) busybox() (v1.Image, error) {
	files := append([]testimage.File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(standinPasswd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(standinGroup)},
	}, b.debian...)
	return testimage.WithFiles(b.base, files...)
}

// distinct builds the busybox stand-in with a file naming it, so that it is
// an image of its own.
func distinct(name string) func(*imageBuilder) (v1.Image, error) {
	return func(b *imageBuilder) (v1.Image, error) {
		img, err := b.busybox()
		if err != nil {
			return nil, err
		}
		return testimage.WithFiles(img, testimage.File{Path: "/etc/test-image", Mode: 0o644, Data: []byte(name + "\n")})
	}
}

func (b *imageBuilder) nginx(port string) (v1.Image, error) {
	img, err := b.busybox()
	if err != nil {
		return nil, err
	}
	img, err = testimage.WithFiles(img, testimage.File{Path: "/usr/sbin/nginx", Mode: 0o755, Data: b.standin})
	if err != nil {
		return nil, err
	}
	return testimage.WithConfig(img, func(c *v1.Config) {
		c.Cmd = []string{"nginx", "-g", "daemon off;"}
		c.Env = append(c.Env, "STANDIN_PORT="+port)
		c.ExposedPorts = map[string]struct{}{port + "/tcp": {}}
		c.StopSignal = "SIGQUIT"
	})
}

func (b *imageBuilder) httpd() (v1.Image, error) {
	img, err := b.busybox()
	if err != nil {
		return nil, err
	}
	img, err = testimage.WithFiles(img,
		testimage.File{Path: "/usr/local/apache2/bin/httpd", Mode: 0o755, Data: b.standin},
		testimage.File{Path: "/usr/local/apache2/bin/httpd-foreground", Link: "httpd"},
	)
	if err != nil {
		return nil, err
	}
	return testimage.WithConfig(img, func(c *v1.Config) {
		c.Cmd = []string{"httpd-foreground"}
		c.Env = []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "STANDIN_PORT=80"}
		c.WorkingDir = "/usr/local/apache2"
		c.ExposedPorts = map[string]struct{}{"80/tcp": {}}
		c.StopSignal = "SIGWINCH"
	})
}

// nonewprivs has a setuid-root program that prints its effective uid.
func (b *imageBuilder) nonewprivs() (v1.Image, error) {
	img, err := b.busybox()
	if err != nil {
		return nil, err
	}
	img, err = testimage.WithFiles(img, testimage.File{Path: "/usr/local/bin/nnp", Mode: 0o4755, Data: b.standin})
	if err != nil {
		return nil, err
	}
	return testimage.WithConfig(img, func(c *v1.Config) { c.Cmd = []string{"/usr/local/bin/nnp"} })
}

func (b *imageBuilder) user(user string) (v1.Image, error) {
	img, err := b.busybox()
	if err != nil {
		return nil, err
	}
	return testimage.WithConfig(img, func(c *v1.Config) { c.User = user })
}

// predefinedGroup runs as default-user (1000), a member of a group defined
// only in the image's /etc/group (50000).
func (b *imageBuilder) predefinedGroup() (v1.Image, error) {
	img, err := b.busybox()
	if err != nil {
		return nil, err
	}
	img, err = testimage.WithFiles(img,
		testimage.File{Path: "/etc/passwd", Mode: 0o644, Data: []byte(standinPasswd + "default-user:x:1000:1000::/home/default-user:/bin/sh\n")},
		testimage.File{Path: "/etc/group", Mode: 0o644, Data: []byte(standinGroup + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")},
	)
	if err != nil {
		return nil, err
	}
	return testimage.WithConfig(img, func(c *v1.Config) { c.User = "default-user" })
}

// withLibraries returns the dynamically linked program at path and every
// library ldd says it loads, each at the path the loader looks for it.
func withLibraries(path string) ([]testimage.File, error) {
	dynamic, err := isDynamic(path)
	if err != nil {
		return nil, err
	}
	if !dynamic {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return []testimage.File{{Path: path, Mode: 0o755, Data: data}}, nil
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	paths := []string{path}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x…)"; vdso has no file.
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			paths = append(paths, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			paths = append(paths, f[0])
		}
	}
	var files []testimage.File
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		files = append(files, testimage.File{Path: p, Mode: 0o755, Data: data})
	}
	return files, nil
}

// isDynamic tells whether the ELF program at path has an interpreter.
func isDynamic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// pushStandins builds every stand-in and pushes it under all its names.
func pushStandins(ctx context.Context, reg *testimage.Registry, b *imageBuilder) error {
	for _, s := range standins() {
		img, err := s.build(b)
		if err != nil {
			return fmt.Errorf("build %s: %w", s.names[0], err)
		}
		for _, n := range s.names {
			if err := reg.Push(ctx, img, n); err != nil {
				return err
			}
		}
	}
	return nil
}
