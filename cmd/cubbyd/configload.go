package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// defaultConfigPath is read when --config names none; it may be missing.
const defaultConfigPath = "/etc/cubby/config.toml"

// dropInDir is the directory of drop-in files next to the main config.
const dropInDir = "config.d"

// configSet is cubbyd's configuration merged from its defaults, the main
// file, the drop-ins in <dir of main file>/config.d/*.toml in lexical order
// (CRI-O's convention) and the path flags, later ones overriding earlier
// ones key by key. A table under a map-valued key (a registry under
// [image.registries]) replaces the same table of an earlier file whole.
type configSet struct {
	cfg config
	// files are the files applied, in order.
	files []string
	// src maps each dotted key that a file or flag set to the last one
	// that did; keys it lacks keep their defaults.
	src map[string]string
	// lines maps each file to the key each of its lines sets (lineKeys).
	lines map[string][]string
}

// configError is one mistake in the configuration.
type configError struct {
	File string // "" for a default value or a flag
	Line int    // 0 when unknown
	Key  string // dotted TOML key; "" for a syntax error without one
	Msg  string
}

func (e configError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// configErrors are all the mistakes found, each on its own line.
type configErrors []configError

func (es configErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = "  " + e.Error()
	}
	return fmt.Sprintf("invalid configuration (%d errors):\n%s", len(es), strings.Join(lines, "\n"))
}

// loadConfigSet merges the defaults, path (which may be missing unless
// mustExist), its drop-ins and the path flags (flag name, which is the key,
// to value; empty values are not set), and validates the result. Every
// mistake in every file is reported, as configErrors; the set is returned
// with them.
func loadConfigSet(path string, mustExist bool, flags map[string]string) (*configSet, error) {
	cs := &configSet{cfg: defaultConfig(), src: map[string]string{}, lines: map[string][]string{}}
	files, err := configFiles(path, mustExist)
	if err != nil {
		return cs, err
	}
	var errs configErrors
	for _, f := range files {
		errs = append(errs, cs.apply(f)...)
	}
	cs.setFlags(flags)
	errs = append(errs, cs.validate()...)
	if len(errs) > 0 {
		sortErrors(errs, files)
		return cs, errs
	}
	return cs, nil
}

// sortErrors orders errs by file, in the order files apply, then by line;
// those of defaults and flags come last.
func sortErrors(errs configErrors, files []string) {
	rank := func(f string) int {
		if i := slices.Index(files, f); i >= 0 {
			return i
		}
		return len(files)
	}
	slices.SortStableFunc(errs, func(a, b configError) int {
		if c := rank(a.File) - rank(b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}

// configFiles lists path, when it exists, and then its drop-ins in
// lexical order.
func configFiles(path string, mustExist bool) ([]string, error) {
	var files []string
	switch _, err := os.Stat(path); {
	case err == nil:
		files = append(files, path)
	case errors.Is(err, fs.ErrNotExist) && !mustExist:
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}
	dropIns, err := filepath.Glob(filepath.Join(filepath.Dir(path), dropInDir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("list config drop-ins: %w", err)
	}
	slices.Sort(dropIns)
	return append(files, dropIns...), nil
}

// maxFileErrors bounds the bad values reported of one file.
const maxFileErrors = 20

// apply decodes file over the configuration and returns its mistakes. A
// value of the wrong type is reported and its line left out, and the rest
// of the file still applies, so that one run reports every bad value (the
// daemon does not start with any). A syntax error stops the file.
func (cs *configSet) apply(file string) []configError {
	b, err := os.ReadFile(file)
	if err != nil {
		return []configError{{File: file, Msg: err.Error()}}
	}
	text := string(b)
	cs.lines[file] = lineKeys(text)
	var errs []configError
	for {
		if err := toml.Unmarshal([]byte(text), new(map[string]any)); err != nil {
			return append(errs, cs.decodeError(file, err)) // syntax
		}
		// Decoding stops halfway at a bad value: try a scratch copy first,
		// so that the merged configuration never holds half a file.
		scratch := defaultConfig()
		_, err := toml.Decode(text, &scratch)
		if err == nil {
			break
		}
		ce := cs.decodeError(file, err)
		errs = append(errs, ce)
		if ce.Line == 0 || len(errs) >= maxFileErrors {
			return errs
		}
		text = blankLine(text, ce.Line)
	}
	md, err := toml.Decode(text, &cs.cfg)
	if err != nil { // decoded above into the same type
		return append(errs, cs.decodeError(file, err))
	}
	cs.files = append(cs.files, file)
	for _, k := range md.Keys() {
		if md.Type(k...) != "Hash" {
			cs.src[k.String()] = file
		}
	}
	return append(errs, cs.unknownKeys(file, md.Undecoded())...)
}

// blankLine empties line n (from 1) of text.
func blankLine(text string, n int) string {
	lines := strings.Split(text, "\n")
	if n >= 1 && n <= len(lines) {
		lines[n-1] = ""
	}
	return strings.Join(lines, "\n")
}

// tomlErrorRE matches the toml package's errors for values of the wrong type.
var tomlErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "((?:[^"\\]|\\.)*)"\): (.*)$`)

// decodeError turns the toml package's error into a configError.
func (cs *configSet) decodeError(file string, err error) configError {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return configError{File: file, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	if m := tomlErrorRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		key, uerr := strconv.Unquote(`"` + m[2] + `"`)
		if uerr != nil {
			key = m[2]
		}
		return configError{File: file, Line: line, Key: key, Msg: m[3]}
	}
	return configError{File: file, Msg: err.Error()}
}

// unknownKeys reports the keys of file that no setting takes; of an unknown
// table only the table itself.
func (cs *configSet) unknownKeys(file string, undecoded []toml.Key) []configError {
	unknown := map[string]bool{}
	for _, k := range undecoded {
		unknown[k.String()] = true
	}
	var errs []configError
	for _, k := range undecoded {
		if hasUnknownParent(k, unknown) {
			continue
		}
		errs = append(errs, configError{File: file, Line: cs.line(file, k.String()), Key: k.String(), Msg: "unknown key"})
	}
	return errs
}

func hasUnknownParent(k toml.Key, unknown map[string]bool) bool {
	for i := 1; i < len(k); i++ {
		if unknown[k[:i].String()] {
			return true
		}
	}
	return false
}

// line returns the line of file that sets key, or that of its closest
// parent; 0 when there is none.
func (cs *configSet) line(file, key string) int {
	best, bestLen := 0, -1
	for i, k := range cs.lines[file] {
		if k == key {
			return i + 1
		}
		if k != "" && strings.HasPrefix(key, k+".") && len(k) > bestLen {
			best, bestLen = i+1, len(k)
		}
	}
	return best
}

// setFlags overrides the path settings with the flags of the same names.
func (cs *configSet) setFlags(flags map[string]string) {
	fields := map[string]*string{"listen": &cs.cfg.Listen, "root": &cs.cfg.Root, "state": &cs.cfg.State}
	for name, value := range flags {
		field, ok := fields[name]
		if !ok || value == "" {
			continue
		}
		*field = value
		cs.src[name] = "--" + name + " flag"
	}
}

// where is the error location of key: the file and line that set it.
func (cs *configSet) where(key string) (string, int) {
	src, ok := cs.src[key]
	if !ok {
		return "default", 0
	}
	if _, isFile := cs.lines[src]; !isFile {
		return src, 0
	}
	return src, cs.line(src, key)
}

// validate checks the merged values that TOML types cannot, naming the
// file and line that set each bad one.
func (cs *configSet) validate() []configError {
	var errs []configError
	for _, p := range validateConfig(cs.cfg) {
		file, line := cs.where(p.key)
		errs = append(errs, configError{File: file, Line: line, Key: p.key, Msg: p.msg})
	}
	return errs
}

// keyProblem is a bad value of one setting.
type keyProblem struct{ key, msg string }

// validateConfig checks each setting's value on its own.
func validateConfig(c config) []keyProblem {
	var ps []keyProblem
	bad := func(key, format string, args ...any) {
		ps = append(ps, keyProblem{key, fmt.Sprintf(format, args...)})
	}
	for key, p := range map[string]string{"root": c.Root, "state": c.State, "listen": c.Listen, "cgroup_parent": c.CgroupParent} {
		if !filepath.IsAbs(p) {
			bad(key, "%q is not an absolute path", p)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	if goos, arch, ok := strings.Cut(c.Image.Platform, "/"); !ok || goos == "" || arch == "" {
		bad("image.platform", "%q is not os/arch (linux/amd64)", c.Image.Platform)
	}
	if c.Image.NoProgressTimeout < 0 {
		bad("image.no_progress_timeout", "%v is negative (\"0s\" disables the timeout)", c.Image.NoProgressTimeout)
	}
	if c.Image.MaxConcurrentDownloads < 0 {
		bad("image.max_concurrent_downloads", "%d is negative", c.Image.MaxConcurrentDownloads)
	}
	for host, r := range c.Image.Registries {
		for _, m := range r.Mirrors {
			if strings.TrimSpace(m) == "" {
				bad(toml.Key{"image", "registries", host, "mirrors"}.String(), "a mirror is empty")
			}
		}
	}
	if _, err := netip.ParsePrefix(c.CNI.DefaultSubnet); err != nil {
		bad("cni.default_subnet", "%q is not a subnet (10.88.0.0/16)", c.CNI.DefaultSubnet)
	}
	if n := len(c.CNI.DefaultBridge); n == 0 || n > 15 {
		bad("cni.default_bridge", "%q is not a link name (1 to 15 bytes)", c.CNI.DefaultBridge)
	}
	if _, _, err := net.SplitHostPort(c.Streaming.Address); err != nil {
		bad("streaming.address", "%q is not host:port: %v", c.Streaming.Address, err)
	}
	if a := c.Metrics.Address; a != "" {
		if err := checkListenAddress(a); err != nil {
			bad("metrics.address", "%q: %v", a, err)
		}
	}
	ps = append(ps, c.Containers.problems()...)
	slices.SortFunc(ps, func(a, b keyProblem) int { return strings.Compare(a.key, b.key) })
	return ps
}

// checkListenAddress checks a TCP host:port to listen on.
func checkListenAddress(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// print writes the merged configuration as TOML, each setting followed by
// a comment naming the file and line, or flag, that set it, or "default".
func (cs *configSet) print(w io.Writer) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cs.cfg); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	var out bytes.Buffer
	out.WriteString("# cubbyd configuration merged from the defaults")
	for _, f := range cs.files {
		out.WriteString(", " + f)
	}
	out.WriteString(" and the flags, in that order.\n\n")
	text := strings.TrimSuffix(buf.String(), "\n")
	keys := lineKeys(text)
	for i, line := range strings.Split(text, "\n") {
		out.WriteString(line)
		if k := keys[i]; k != "" && !strings.HasPrefix(strings.TrimSpace(line), "[") {
			file, n := cs.where(k)
			if n > 0 {
				file += ":" + strconv.Itoa(n)
			}
			out.WriteString("  # " + file)
		}
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}
