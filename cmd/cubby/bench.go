package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cubby/cmd/cubby/bench"
)

const benchUsage = `usage: cubby bench [flags]

Benchmarks any CRI runtime through the CRI client: pod start, burst, idle
cost per pod, ExecSync and List latency. Run as root on the runtime's host.
Every pod it makes carries the label ` + bench.LabelRun + ` and is removed at
the end, also on SIGINT/SIGTERM; pods with that label left by an earlier run
are removed at start.

flags:
`

// cmdBench runs the benchmark harness and prints its table (and JSON).
func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		opts     bench.Options
		jsonPath string
	)
	fs.StringVar(&opts.Endpoint, "endpoint", "unix:///run/cubby/cubby.sock", "CRI endpoint")
	fs.StringVar(&opts.Image, "image", "docker.io/library/busybox:latest", "container image (needs sleep and true); pulled through the CRI if missing")
	fs.IntVar(&opts.N, "n", 50, "pods per section")
	fs.IntVar(&opts.Concurrency, "concurrency", 10, "parallel pod starts in the burst")
	fs.DurationVar(&opts.Idle, "idle", 10*time.Second, "idle window for the CPU measurement")
	fs.IntVar(&opts.ExecCalls, "exec-calls", 200, "ExecSync calls")
	fs.IntVar(&opts.ListCalls, "list-calls", 100, "calls of each List RPC")
	fs.DurationVar(&opts.Timeout, "timeout", 2*time.Minute, "timeout of each CRI call")
	fs.IntVar(&opts.DaemonPID, "daemon-pid", 0, "pid of the CRI daemon; 0 finds the owner of the endpoint's socket")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	opts.Progress = os.Stderr

	// The first SIGINT/SIGTERM cancels the run; Run then removes its pods
	// before returning. Signals stay caught until then so that a second ^C
	// cannot cut the cleanup short.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer close(sigs) // after Stop: ends the goroutine below
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "bench: %v: stopping, removing the bench's pods\n", s)
			cancel()
		}
	}()

	rep, err := bench.Run(ctx, opts)
	if rep != nil {
		if werr := rep.WriteTable(os.Stdout); werr != nil {
			err = errors.Join(err, werr)
		}
		if jsonPath != "" {
			err = errors.Join(err, writeReport(jsonPath, rep))
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func writeReport(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
