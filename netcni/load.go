package netcni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// confExtensions are the file kinds read from the conf dir, as in
// containerd and CRI-O.
var confExtensions = []string{".conflist", ".conf", ".json"}

// loaded is the outcome of reading the conf dir once.
type loaded struct {
	// stamp identifies the conf dir contents this was read from.
	stamp string
	// net is the pod network; nil when err is set.
	net *libcni.NetworkConfigList
	// source is the file net came from, or "built-in".
	source string
	// err says why there is no usable network (wraps ErrNotReady).
	err error
	// ignored says which files of the conf dir were skipped and why:
	// files that do not parse, or, when none does, that the last good
	// network is still in use.
	ignored error
}

// confStamp summarises the conf dir cheaply (one readdir, one lstat per
// candidate file): name, size and mtime of every candidate. Any file being
// added, removed, renamed or rewritten changes it.
func confStamp(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries { // ReadDir sorts by name.
		if e.IsDir() || !slices.Contains(confExtensions, filepath.Ext(e.Name())) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed between readdir and lstat
			}
			return "", err
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00%o\n", e.Name(), info.Size(), info.ModTime().UnixNano(), info.Mode())
	}
	return b.String(), nil
}

// load reads the pod network from cfg.ConfDir, falling back to the
// built-in network when the dir has no candidate file or does not exist.
// Files that do not parse are skipped; if no file parses, the result
// carries an error naming each of them.
func load(cfg Config, stamp string) loaded {
	l := loaded{stamp: stamp}
	files, err := candidateFiles(cfg.ConfDir)
	if err != nil {
		l.err = fmt.Errorf("%w: read cni conf dir %s: %v", ErrNotReady, cfg.ConfDir, err)
		return l
	}
	if len(files) == 0 {
		l.net, l.err = builtinNetwork(cfg)
		l.source = "built-in"
		if l.err != nil {
			l.err = fmt.Errorf("%w: built-in network: %v", ErrNotReady, l.err)
		}
		return l
	}
	var errs []error
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		l.net, l.source, l.ignored = list, f, errors.Join(errs...)
		return l
	}
	l.err = fmt.Errorf("%w: no usable cni network config in %s: %w", ErrNotReady, cfg.ConfDir, errors.Join(errs...))
	return l
}

// candidateFiles lists the conf dir's config files in lexical order.
func candidateFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return files, nil
}

// loadFile parses one config file; a single-plugin .conf or .json becomes
// a list of one.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, err
		}
		if err := checkListName(list); err != nil {
			return nil, err
		}
		return list, nil
	}
	//lint:ignore SA1019 single-plugin .conf files are still common on nodes.
	conf, err := libcni.ConfFromFile(path)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 as above.
	list, err := libcni.ConfListFromConf(conf)
	if err != nil {
		return nil, err
	}
	if err := checkListName(list); err != nil {
		return nil, err
	}
	return list, nil
}

// checkListName rejects a network whose name would collide with the cache
// entries of the loopback network older cubby versions ran.
func checkListName(list *libcni.NetworkConfigList) error {
	if list.Name == "" {
		return errors.New("network has no name")
	}
	if list.Name == loopbackNetworkName {
		return fmt.Errorf("network name %q is reserved", list.Name)
	}
	return nil
}
