// Package poll is for tests that wait on real goroutines, sockets or
// servers: it checks a condition until it holds or time runs out. Timing
// that depends only on timers and channels inside the test is better
// tested with testing/synctest.
package poll

import (
	"bytes"
	"runtime"
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

// Goroutines returns the stack of every goroutine whose status contains
// state ("IO wait", "select", "chan receive", "sync.Mutex.Lock"; "" for
// all), innermost frame first, one string each, as runtime.Stack prints
// them without the "goroutine N [status]:" line. A test waits with Until
// for a goroutine to be blocked where it means it to be (a write waiting
// for room, a loop parked in its select) instead of sleeping.
func Goroutines(state string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		head, stack, _ := bytes.Cut(g, []byte("\n"))
		if _, status, ok := bytes.Cut(head, []byte(" [")); ok && bytes.Contains(status, []byte(state)) {
			out = append(out, string(stack))
		}
	}
	return out
}
