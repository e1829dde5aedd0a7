package main

import "errors"

// cmdBench runs the benchmark harness (see issue: benchmark harness).
func cmdBench(args []string) error {
	return errors.New("bench is not implemented yet")
}
