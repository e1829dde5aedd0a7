package framework

import (
	"context"
	"fmt"
	"time"
)

// Poll calls cond every interval until it reports done, returns an error, or
// ctx ends. It is how the suite waits for asynchronous effects without
// asserting on how long they take: the deadline only bounds a hang.
func Poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", ctx.Err())
		case <-t.C:
		}
	}
}
