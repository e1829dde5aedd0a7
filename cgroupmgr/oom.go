package cgroupmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// OOMKills returns how many processes of the cgroup at path the kernel's
// OOM killer has killed for exceeding its memory limit (oom_kill in
// memory.oom_control on v1, memory.events on v2). A cgroup without a memory
// controller has none.
func (m *Manager) OOMKills(path string) (uint64, error) {
	if err := validatePath(path); err != nil {
		return 0, err
	}
	for _, d := range m.b.dirs(path) {
		for _, name := range []string{"memory.oom_control", "memory.events"} {
			n, err := keyedValue(filepath.Join(d, name), "oom_kill")
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("oom kills of cgroup %q: %w", path, err)
			}
			return n, nil
		}
	}
	return 0, nil
}

// KillAll kills every process in the cgroup at path and below it and waits
// (bounded) until they are gone; the cgroup stays. A missing cgroup has
// nothing to kill.
func (m *Manager) KillAll(path string) error {
	dirs, err := m.existing(path)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := m.killAndWait(path, dirs, time.Now().Add(m.killTimeout)); err != nil {
		return fmt.Errorf("kill processes of cgroup %q: %w", path, err)
	}
	return nil
}

// keyedValue reads the value of key from a "key value" per line file.
func keyedValue(file, key string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s in %s: %w", key, file, err)
			}
			return n, nil
		}
	}
	return 0, nil
}
