// Command benchenv is the environment of `make bench`: it serves the busybox
// test image on a loopback registry, starts a private cubbyd (hack/testnode)
// on a bench-only CNI bridge and subnet with its own root, state and cgroup
// parent, runs `cubby bench` against it with the arguments after "--", and
// tears all of it down again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"cubby/critest/testimage"
	"cubby/hack/testnode"
)

// options are benchenv's flags.
type options struct {
	node      testnode.Options
	cubby     string
	busybox   string
	benchArgs []string
}

func main() {
	var o options
	o.node.RegisterFlags(flag.CommandLine, testnode.Options{
		Bridge: "cbbench0", Subnet: "10.254.0.0/16", NetworkName: "cubby-bench", CgroupParent: "/cubby-bench",
	})
	flag.StringVar(&o.cubby, "cubby", "bin/cubby", "cubby CLI binary")
	flag.StringVar(&o.busybox, "busybox", testimage.DefaultBusybox, "static busybox the test image is built from")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchenv [flags] [-- cubby bench flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.benchArgs = flag.Args()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "benchenv: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) (err error) {
	// Catch signals for the whole run: the bench child gets ^C from the
	// terminal itself; SIGTERM sent to us alone is forwarded to it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	img, err := testimage.Build(o.busybox)
	if err != nil {
		return fmt.Errorf("build test image: %w", err)
	}
	ctx := context.Background()
	reg, err := testimage.Serve(ctx, img)
	if err != nil {
		return fmt.Errorf("serve test image: %w", err)
	}
	defer func() { err = errors.Join(err, reg.Close()) }()

	node, err := testnode.Start(ctx, o.node, sigs)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, node.Close()) }()

	args := append([]string{"bench", "--endpoint", node.Endpoint, "--image", reg.Ref}, o.benchArgs...)
	fmt.Fprintf(os.Stderr, "benchenv: %s %s (cubbyd log %s)\n", o.cubby, strings.Join(args, " "), node.Log)
	cmd := exec.Command(o.cubby, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	return testnode.RunChild(cmd, sigs)
}
