package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// defaultKillTimeout bounds how long Delete waits for killed processes
	// to leave the cgroup.
	defaultKillTimeout = 10 * time.Second
	// procsFile lists the processes of a cgroup; writing a pid moves it in.
	procsFile = "cgroup.procs"
)

// Manager creates, configures and removes cgroups on the host. It keeps no
// per-cgroup state and is safe for concurrent use.
type Manager struct {
	b           backend
	killTimeout time.Duration
}

// backend is one cgroup version's view of the host.
type backend interface {
	version() int
	// dirs returns the directory of the cgroup path in every hierarchy, one
	// per distinct hierarchy, whether or not it exists.
	dirs(path string) []string
	create(path string, res *specs.LinuxResources) error
	update(path string, res *specs.LinuxResources) error
	// kill sends SIGKILL to every process in the cgroup and its descendants.
	kill(path string) error
	stats(path string) (Stats, error)
}

// New returns a Manager for the host's cgroup setup: cgroup v1 on legacy and
// hybrid hosts, cgroup v2 on unified hosts.
func New() (*Manager, error) {
	var (
		b   backend
		err error
	)
	switch mode := cgroups.Mode(); mode {
	case cgroups.Unified:
		b, err = newV2(cgroupRoot)
	case cgroups.Legacy, cgroups.Hybrid:
		b, err = newV1()
	default:
		return nil, fmt.Errorf("no cgroup hierarchy mounted at %s: %w", cgroupRoot, ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return &Manager{b: b, killTimeout: defaultKillTimeout}, nil
}

// Version is the cgroup version in use: 1 or 2.
func (m *Manager) Version() int { return m.b.version() }

// Create makes the cgroup at path in every hierarchy, parents included, and
// applies res, which may be nil. Creating an existing cgroup applies res
// again and is not an error.
func (m *Manager) Create(path string, res *specs.LinuxResources) error {
	if err := validatePath(path); err != nil {
		return err
	}
	if err := m.b.create(path, res); err != nil {
		return fmt.Errorf("create cgroup %q: %w", path, err)
	}
	return nil
}

// Update applies res to the existing cgroup at path.
func (m *Manager) Update(path string, res *specs.LinuxResources) error {
	if _, err := m.existing(path); err != nil {
		return err
	}
	if res == nil {
		return nil
	}
	if err := m.b.update(path, res); err != nil {
		return fmt.Errorf("update cgroup %q: %w", path, err)
	}
	return nil
}

// ProcsFiles returns the cgroup.procs files a process writes its pid into to
// join the cgroup at path: one per hierarchy on cgroup v1, one on v2. It is
// for processes that join by themselves without this package (the lean
// per-pod init). Hierarchies where the cgroup is missing are left out.
func (m *Manager) ProcsFiles(path string) ([]string, error) {
	dirs, err := m.existing(path)
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(dirs))
	for _, d := range dirs {
		files = append(files, filepath.Join(d, procsFile))
	}
	return files, nil
}

// AddProc moves the process pid, with all its threads, into the cgroup at
// path on every hierarchy.
func (m *Manager) AddProc(path string, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add pid %d to cgroup %q: %w", pid, path, ErrInvalidArgument)
	}
	files, err := m.ProcsFiles(path)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writePid(f, pid); err != nil {
			return fmt.Errorf("add pid %d to cgroup %q: %w", pid, path, err)
		}
	}
	return nil
}

// Pids returns the processes in the cgroup at path and its descendants, on
// any hierarchy, sorted and without duplicates.
func (m *Manager) Pids(path string) ([]int, error) {
	dirs, err := m.existing(path)
	if err != nil {
		return nil, err
	}
	pids, err := pidsIn(dirs)
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %q: %w", path, err)
	}
	return pids, nil
}

// Stats returns the cumulative CPU time and the memory use of the cgroup at
// path, descendants included.
func (m *Manager) Stats(path string) (Stats, error) {
	if err := validatePath(path); err != nil {
		return Stats{}, err
	}
	s, err := m.b.stats(path)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of cgroup %q: %w", path, err)
	}
	return s, nil
}

// Delete kills every process left in the cgroup at path or below it, waits
// (bounded) until they are gone, and removes the cgroup and its descendants
// from every hierarchy, deepest first. A missing cgroup is not an error.
func (m *Manager) Delete(path string) error {
	dirs, err := m.existing(path)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	deadline := time.Now().Add(m.killTimeout)
	if err := m.killAndWait(path, dirs, deadline); err != nil {
		return fmt.Errorf("delete cgroup %q: %w", path, err)
	}
	for _, d := range dirs {
		if err := removeTree(d, deadline); err != nil {
			return fmt.Errorf("delete cgroup %q: %w", path, err)
		}
	}
	return nil
}

// killAndWait kills the processes in dirs until none is left or the
// deadline passes. Killing is repeated now and then, which catches a process
// that slipped in (or forked) after a kill round.
func (m *Manager) killAndWait(path string, dirs []string, deadline time.Time) error {
	const (
		poll       = 5 * time.Millisecond
		killEveryN = 20
	)
	for round := 0; ; round++ {
		pids, err := pidsIn(dirs)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s: %v", ErrBusy, m.killTimeout, pids)
		}
		if round%killEveryN == 0 {
			if err := m.b.kill(path); err != nil {
				return fmt.Errorf("kill processes: %w", err)
			}
		}
		time.Sleep(poll)
	}
}

// existing validates path and returns its directories that exist, or
// ErrNotFound if there are none.
func (m *Manager) existing(path string) ([]string, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	var found []string
	for _, d := range m.b.dirs(path) {
		_, err := os.Stat(d)
		switch {
		case err == nil:
			found = append(found, d)
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("cgroup %q: %w", path, err)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("cgroup %q: %w", path, ErrNotFound)
	}
	return found, nil
}

// validatePath accepts clean absolute cgroup paths below the hierarchy root,
// as they appear in /proc/<pid>/cgroup.
func validatePath(path string) error {
	switch {
	case !strings.HasPrefix(path, "/"),
		path == "/",
		filepath.Clean(path) != path,
		strings.ContainsRune(path, 0),
		path == cgroupRoot || strings.HasPrefix(path, cgroupRoot+"/"):
		return fmt.Errorf("%w: %q", ErrInvalidPath, path)
	}
	return nil
}

// writePid writes pid into a cgroup.procs file. The kernel refuses (EINVAL)
// a task that is still being forked; that is retried a few times.
func writePid(file string, pid int) error {
	const attempts = 5
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte(strconv.Itoa(pid))
	for i := 0; ; i++ {
		_, err = f.Write(b)
		if err == nil || !errors.Is(err, syscall.EINVAL) || i == attempts-1 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UnifiedDir returns the cgroup v2 directory of the existing cgroup at path,
// for starting a process directly inside it (open it and pass the fd as
// syscall.SysProcAttr.CgroupFD, CLONE_INTO_CGROUP). On cgroup v1 it returns
// ErrUnsupported: join with ProcsFiles or AddProc instead.
func (m *Manager) UnifiedDir(path string) (string, error) {
	if m.b.version() != 2 {
		return "", fmt.Errorf("cgroup %q: clone into cgroup needs cgroup v2: %w", path, ErrUnsupported)
	}
	dirs, err := m.existing(path)
	if err != nil {
		return "", err
	}
	return dirs[0], nil
}
