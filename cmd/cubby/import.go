package main

import "errors"

// cmdImport loads image archives into the store (see issue: image service).
func cmdImport(args []string) error {
	return errors.New("import is not implemented yet")
}
