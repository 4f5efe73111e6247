// Package backoff holds the waits of quotehub's upstream clients between
// attempts: exponential backoff with full jitter, and a sleep that ends
// with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry n (n = 0 for the first): a uniformly
// random duration in [0, min(most, base·2ⁿ)) ("full jitter"), so that
// clients that failed together do not retry together. random returns
// uniform numbers in [0, 1); nil means math/rand/v2's Float64.
func Delay(n int, base, most time.Duration, random func() float64) time.Duration {
	ceiling := most
	if n < 32 {
		if d := base << n; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if random == nil {
		random = rand.Float64
	}
	return time.Duration(random() * float64(ceiling))
}

// Sleep waits for d or until ctx ends, whichever comes first. It returns
// ctx.Err() when ctx ended first (also when d is not positive), else nil.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
