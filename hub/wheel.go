package hub

import (
	"sync"
	"time"
)

// wheelTick is how often the wheel looks at the held writers: the
// granularity of a hold's end. Holds last from tens of milliseconds (a
// peer that drains its backlog soon) to a second.
const wheelTick = 25 * time.Millisecond

// wheel wakes held writers (see writer.hold) when their hold ends: one
// goroutine and one ticker for the whole hub instead of a timer per held
// client. Each tick costs O(held clients); the goroutine runs only while
// some client is held and exits when none is, so a hub whose clients all
// keep up pays nothing.
//
// Lock order: a client's mu, then the wheel's.
type wheel struct {
	mu      sync.Mutex
	due     map[*Client]int64 // held client → Unix ns its hold ends
	running bool              // the goroutine runs (or is about to)
	wake    []*Client         // reused by the goroutine
}

// holdUntilLocked holds c until due (Unix ns), starting the goroutine if it
// does not run. c.mu is held.
func (h *Hub) holdUntilLocked(c *Client, due int64) {
	wh := &h.wheel
	wh.mu.Lock()
	if wh.due == nil {
		wh.due = make(map[*Client]int64)
	}
	wh.due[c] = due
	start := !wh.running
	wh.running = true
	wh.mu.Unlock()
	if start {
		go h.turnWheel()
	}
}

// unholdLocked takes c off the wheel. c.mu is held.
func (h *Hub) unholdLocked(c *Client) {
	h.wheel.mu.Lock()
	delete(h.wheel.due, c)
	h.wheel.mu.Unlock()
}

// turnWheel wakes each held client whose hold has ended, every wheelTick,
// until no client is held or the hub stops.
func (h *Hub) turnWheel() {
	wh := &h.wheel
	t := time.NewTicker(wheelTick)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			wh.mu.Lock()
			wh.running = false
			wh.mu.Unlock()
			return
		case <-t.C:
		}
		now := h.opts.Now().UnixNano()
		wh.mu.Lock()
		if len(wh.due) == 0 {
			wh.running = false
			wh.mu.Unlock()
			return
		}
		wake := wh.wake[:0]
		for c, due := range wh.due {
			if due <= now {
				wake = append(wake, c)
				delete(wh.due, c)
			}
		}
		wh.mu.Unlock()
		for _, c := range wake {
			c.wakeHeld()
		}
		clear(wake)
		wh.wake = wake[:0]
	}
}
