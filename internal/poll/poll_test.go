package poll_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"quotehub/internal/poll"
)

func TestUntil(t *testing.T) {
	t.Run("returns once cond holds", func(t *testing.T) {
		var n atomic.Int32
		go func() {
			for range 3 {
				time.Sleep(time.Millisecond)
				n.Add(1)
			}
		}()
		poll.Until(t, 5*time.Second, "three increments", func() bool { return n.Load() == 3 })
	})
	t.Run("fails naming what it waited for", func(t *testing.T) {
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() { // Fatalf ends the goroutine it is called from
			defer close(done)
			poll.Until(r, 20*time.Millisecond, "a condition that never holds", func() bool { return false })
		}()
		<-done
		if !strings.Contains(r.msg, "timed out after 20ms waiting for a condition that never holds") {
			t.Errorf("failure %q does not say what timed out", r.msg)
		}
	})
}

func TestGoroutines(t *testing.T) {
	c, d := make(chan int), make(chan int)
	go parkInSelect(c, d)
	defer close(c)
	poll.Until(t, 5*time.Second, "a goroutine parked in parkInSelect", func() bool {
		for _, g := range poll.Goroutines("select") {
			if strings.HasPrefix(g, "quotehub/internal/poll_test.parkInSelect(") {
				return true
			}
		}
		return false
	})
	for _, g := range poll.Goroutines("chan send") {
		if strings.Contains(g, "parkInSelect") {
			t.Errorf("a select listed as a channel send:\n%s", g)
		}
	}
}

func parkInSelect(c, d chan int) {
	select {
	case <-c:
	case <-d:
	}
}

// recorder records Fatalf instead of failing the test.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
