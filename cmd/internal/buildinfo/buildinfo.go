// Package buildinfo reports which build of cubby is running: the version
// (`git describe --tags --always --dirty`), the git commit and the Go
// version. The Makefile's build sets the first two with
//
//	-ldflags "-X cubby/cmd/internal/buildinfo.version=... -X cubby/cmd/internal/buildinfo.commit=..."
//
// A plain `go build` in a git checkout falls back to the VCS settings the Go
// toolchain stamps into the binary; anything else reports "dev".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (see the package comment); empty in a plain build.
var (
	version string
	commit  string
)

// Dev is the version of a build that carries no version information.
const Dev = "dev"

// Info describes one build.
type Info struct {
	// Version is a git describe string ("v0.2.0-3-g1a2b3c4-dirty"), a
	// short commit for a plain go build, or Dev.
	Version string
	// Commit is the full git commit hash, or "unknown".
	Commit string
	// GoVersion is the Go toolchain that built the binary ("go1.26.8").
	GoVersion string
}

// Get returns the running binary's build information.
func Get() Info {
	var settings []debug.BuildSetting
	if bi, ok := debug.ReadBuildInfo(); ok {
		settings = bi.Settings
	}
	return resolve(version, commit, settings, runtime.Version())
}

// resolve prefers the linker-set values, then the toolchain's VCS stamps.
func resolve(ldVersion, ldCommit string, settings []debug.BuildSetting, goVersion string) Info {
	info := Info{Version: ldVersion, Commit: ldCommit, GoVersion: goVersion}
	var revision string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if info.Commit == "" {
		info.Commit = revision
	}
	if info.Version == "" && revision != "" {
		info.Version = Dev + "-" + shortCommit(revision)
		if modified {
			info.Version += "-dirty"
		}
	}
	if info.Version == "" {
		info.Version = Dev
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// String is the one-line form `cubbyd --version` prints after the name:
// "v0.2.0 (commit 1a2b3c4..., go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}
