package critest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"cubby/critest/framework"
)

// suite is set once by TestMain, before any test runs, and only read after.
var suite *framework.Suite

func TestMain(m *testing.M) {
	var opts framework.Options
	opts.Register(flag.CommandLine)
	flag.Parse()
	if os.Getenv(nodeInitEnv) != "" {
		// Re-executed by TestNoZombieUnderNonReapingInit as PID 1.
		if err := framework.MountOwnProc(); err != nil {
			fmt.Fprintf(os.Stderr, "critest: %v\n", err)
			os.Exit(1)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s, err := framework.NewSuite(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "critest: %v\n", err)
		os.Exit(1)
	}
	suite = s
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "critest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
