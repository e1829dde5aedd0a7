package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cubby/cri/imageimport"
)

// cmdImport loads image archives (docker save tarballs, OCI image-layout
// tars; "-" is stdin) into cubbyd's store through its admin socket.
func cmdImport(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	socket := fs.String("admin-socket", "/run/cubby/admin.sock", "cubbyd's admin socket")
	timeout := fs.Duration("timeout", 30*time.Minute, "timeout of the whole import")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: cubby import [--admin-socket PATH] FILE...  (docker save or OCI layout tar; - for stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("import needs at least one archive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, file := range fs.Args() {
		if err := importFile(ctx, *socket, file); err != nil {
			return err
		}
	}
	return nil
}

func importFile(ctx context.Context, socket, file string) error {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	imgs, err := imageimport.Import(ctx, socket, r)
	if err != nil {
		return fmt.Errorf("import %s: %w", file, err)
	}
	for _, img := range imgs {
		names := strings.Join(append(img.RepoTags, img.RepoDigests...), ",")
		if names == "" {
			names = "<none>"
		}
		fmt.Printf("%s\t%s\n", img.ID, names)
	}
	return nil
}
