package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"cubby/critest/testimage"
)

// Suite is the state shared by all tests of one test binary: the options,
// the test image registry and the lazily built cubby binaries. Create it in
// TestMain with NewSuite and Close it after m.Run.
type Suite struct {
	opts Options

	registry    *testimage.Registry
	registryErr error

	buildOnce sync.Once
	binDir    string // temp dir of built binaries; empty when opts.Cubbyd is set
	cubbyd    string
	buildErr  error
}

// NewSuite builds the test image and starts the registry that serves it. A
// missing busybox is not an error here: the tests that need the image skip.
func NewSuite(ctx context.Context, opts Options) (*Suite, error) {
	s := &Suite{opts: opts}
	if !opts.External() {
		// Adopt the pod inits that a killed private cubbyd orphans.
		if err := BecomeSubreaper(); err != nil {
			return nil, err
		}
	}
	img, err := testimage.Build(opts.Busybox)
	if err != nil {
		s.registryErr = err
		if errors.Is(err, testimage.ErrNoBusybox) {
			return s, nil
		}
		return nil, err
	}
	s.registry, err = testimage.Serve(ctx, img)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Options returns the suite's options.
func (s *Suite) Options() Options { return s.opts }

// Close stops the registry and removes the built binaries.
func (s *Suite) Close() error {
	ReapOrphans()
	var errs []error
	if s.registry != nil {
		errs = append(errs, s.registry.Close())
	}
	if s.binDir != "" {
		errs = append(errs, os.RemoveAll(s.binDir))
	}
	return errors.Join(errs...)
}

// Image returns the registry holding the busybox test image, or skips t
// when it could not be built.
func (s *Suite) Image(t testing.TB) *testimage.Registry {
	t.Helper()
	if s.registry == nil {
		if errors.Is(s.registryErr, testimage.ErrNoBusybox) {
			t.Skipf("no test image: %v (hack/install-deps.sh installs busybox-static)", s.registryErr)
		}
		t.Fatalf("no test image: %v", s.registryErr)
	}
	return s.registry
}

// Cubbyd returns the cubbyd binary that private daemons run, building it on
// first use; it fails t when there is none.
func (s *Suite) Cubbyd(t testing.TB) string {
	t.Helper()
	p, err := s.cubbydPath()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cubbydPath returns the cubbyd binary to start, building cubby/cmd/... into
// a temp dir on first use.
func (s *Suite) cubbydPath() (string, error) {
	if s.opts.Cubbyd != "" {
		return s.opts.Cubbyd, nil
	}
	s.buildOnce.Do(func() {
		s.binDir, s.buildErr = os.MkdirTemp("", "cubby-critest-bin-")
		if s.buildErr != nil {
			return
		}
		s.buildErr = build(s.binDir)
		s.cubbyd = filepath.Join(s.binDir, "cubbyd")
	})
	return s.cubbyd, s.buildErr
}

// goTool returns the go command: from PATH, else the default install path.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// build compiles cubby/cmd/... into dir, from the module root that
// `go env GOMOD` reports for the current directory.
func build(dir string) error {
	gomod, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find module root: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("find module root: not inside a module")
	}
	cmd := exec.Command(goTool(), "build", "-o", dir+"/", "cubby/cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build cubby/cmd/... in %s: %w\n%s", root, err, out)
	}
	// As `make build` does: cubby-pod static, without cgo.
	cmd = exec.Command(goTool(), "build", "-o", dir+"/", "cubby/cmd/cubby-pod")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build cubby/cmd/cubby-pod in %s: %w\n%s", root, err, out)
	}
	return nil
}
