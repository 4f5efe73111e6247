// Package poll is for tests that wait on real goroutines, sockets or
// servers: it checks a condition until it holds or time runs out. Timing
// that depends only on timers and channels inside the test is better
// tested with testing/synctest.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every 5 ms until it returns true, and fails the test
// (tb.Fatalf: call it from the test's goroutine) if that takes longer than
// within. what names the awaited state in the failure: "timed out after
// 2s waiting for <what>".
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
