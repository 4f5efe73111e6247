package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// writer is a client's writer: the goroutine-less state that decides when
// the client's outbox is written and by whom, and the one path that writes
// it. A writer exists only while something is queued (StartOnDemand): the
// first offer or control frame claims it; it runs on the hub's writer pool
// when the transport can write without blocking (TryWriter), else on a
// goroutine of its own, and rests once the outbox is empty. A pooled
// writer whose socket does not take a whole batch goes on on a goroutine
// of its own, so the pool never waits on one client.
//
// Its flags are guarded by the client's mu; moved is atomic (the sweeper
// reads it); the buffers are touched only by the running writer.
type writer struct {
	c     *Client
	t     Transport
	try   TryWriter // t, when the hub's pool writes it; else nil
	pacer Pacer     // t, when it paces the writer by what the peer has not read; else nil

	onDemand    bool // StartOnDemand was called: wakes may start the writer
	running     bool
	held        bool // the pacer holds the writer: it is on the hub's wheel (see hold)
	wakePending bool // an offer asked for a wake its caller has not made yet
	ended       bool // no writer ever again
	end         func(error)
	since       int64 // Unix ns the write delay counts from: when claimed, requeued or it last wrote
	wg          sync.WaitGroup
	moved       atomic.Int64 // Unix ns the current write (or hold) began or last moved; 0 when idle

	ctl [][]byte // reused across writes
	q   []*Update
}

// StartOnDemand makes the client's writer a goroutine that exists only
// while there is something to write: it starts on the first offer or
// control frame, drains the outbox, and exits when it is empty. An idle
// connection then costs no writer goroutine. When the writer ends for good
// (a failed write, or a requested close such as the hub's shutdown, which
// asks for 1001), it calls end with the error, once; end must not call
// Close. Close waits for a running writer to finish.
func (c *Client) StartOnDemand(end func(error)) {
	c.mu.Lock()
	c.w.onDemand, c.w.end = true, end
	start := c.pendingLocked() && c.w.claimLocked()
	c.mu.Unlock()
	if start {
		c.w.start()
	}
}

// pendingLocked reports whether anything waits to be written. c.mu is held.
func (c *Client) pendingLocked() bool {
	return len(c.controls) > 0 || len(c.order) > 0 || c.closeReq != nil || c.folioDue
}

// now is the hub's clock in Unix ns.
func (w *writer) now() int64 { return w.c.hub.opts.Now().UnixNano() }

// claimLocked reports whether the caller should start the writer, and
// marks it running. c.mu is held.
func (w *writer) claimLocked() bool {
	if !w.onDemand || w.running || w.c.closed || w.ended {
		return false
	}
	if w.held {
		if w.c.closeReq == nil && len(w.c.controls) == 0 {
			return false // quotes wait for the hold's end, on the wheel
		}
		w.held = false // a control frame or a close is never held back
		w.c.hub.unholdLocked(w.c)
	}
	w.running = true
	w.wg.Add(1)
	w.since = w.now()
	return true
}

// start runs a claimed writer: on the hub's writer pool when the
// transport can write without blocking, else on a goroutine.
func (w *writer) start() {
	if w.try != nil && w.c.hub.queueWrite(w.c) {
		return
	}
	go w.run()
}

// write is one turn of the writer, the same for the pool and a goroutine
// of its own: unless its pacer holds it (held: the writer rests, see
// hold), it waits out the write delay (counted from since), takes
// everything pending and writes it — without blocking when try is set, in
// which case kept reports a rest the transport keeps for finish — and
// reports whether it wrote anything, and the close requested, if any.
func (w *writer) write(try bool) (wrote, kept, held bool, ce *CloseError, err error) {
	if w.pacer != nil {
		if d := w.pacer.Hold(); d > 0 && w.hold(d) {
			return false, false, true, nil, nil
		}
	}
	if d := w.c.hub.opts.WriteDelay; d > 0 {
		if wait := time.Duration(w.since + int64(d) - w.now()); wait > 0 {
			time.Sleep(wait) // once per burst for the pool: its queue is in queuing order
		}
	}
	controls, quotes, ce, conflated := w.c.drain(w.ctl, w.q)
	if conflated > 0 {
		w.c.hub.opts.Metrics.Conflated.Add(float64(conflated))
	}
	if len(controls) == 0 && len(quotes) == 0 {
		return false, false, false, ce, nil
	}
	w.moved.Store(w.now())
	if try {
		var done bool
		if done, err = w.try.TryWrite(controls, quotes); err == nil && !done {
			w.ctl, w.q = controls, quotes // finish writes them
			return true, true, false, ce, nil
		}
	} else {
		err = w.t.Write(controls, quotes)
	}
	w.wrote(controls, quotes, err)
	return true, false, false, ce, err
}

// hold ends the writer's turn with what is pending left in the outbox,
// for the pacer's d, and reports true; or reports false, and the turn goes
// on, when there is nothing to hold (nothing pending, or a close
// requested: a close is never held back, so a shutdown ends every client).
//
// A held writer is not running and is on the hub's wheel, in the same
// critical section: the wheel wakes it once d has passed, and the pacer
// looks again. Offers meanwhile only fill the outbox (newer quotes
// replace older ones) and do not start it; a control frame or a close
// does (see claimLocked), taking it off the wheel. No state can therefore
// leave pending quotes with nobody to look at them. The hold counts as a
// write that does not move: the stall mark is set (unless a hold already
// set it) and only the pacer's Progressed moves it, so the sweeper closes
// a peer that reads nothing (4000).
func (w *writer) hold(d time.Duration) bool {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeReq != nil || !c.pendingLocked() {
		return false
	}
	w.running, w.held = false, true
	c.hub.opts.Metrics.Held.Inc()
	now := w.now()
	w.moved.CompareAndSwap(0, now)
	c.hub.holdUntilLocked(c, now+int64(d))
	return true
}

// wakeHeld ends the hold of a held writer (the wheel calls it when the
// hold's time has come) and starts it again, if it still has something
// to write, so that its pacer looks again.
func (c *Client) wakeHeld() {
	c.mu.Lock()
	if !c.w.held {
		c.mu.Unlock() // a control frame or a close took it off the wheel
		return
	}
	c.w.held = false
	if !c.pendingLocked() {
		c.mu.Unlock()
		return
	}
	c.wakeLocked()
}

// Resume ends a pacer's hold at once: the transport saw the peer read what
// held it back, and the writer starts again if it has something to write,
// so that its pacer looks again. It does nothing to a writer that is not
// held.
func (c *Client) Resume() {
	c.mu.Lock()
	if !c.w.held {
		c.mu.Unlock()
		return
	}
	c.hub.unholdLocked(c)
	c.w.held = false
	if !c.pendingLocked() {
		c.mu.Unlock()
		return
	}
	c.wakeLocked()
}

// finish writes the rest a pooled write kept, blocking, and records the
// batch.
func (w *writer) finish() error {
	err := w.try.FinishWrite()
	w.wrote(w.ctl, w.q, err)
	return err
}

// wrote records a finished write of controls and quotes (err: it failed)
// and keeps their slices for the next turn.
func (w *writer) wrote(controls [][]byte, quotes []*Update, err error) {
	w.moved.Store(0)
	w.since = w.now()
	if err == nil {
		w.count(quotes)
	}
	clear(controls)
	clear(quotes)
	w.ctl, w.q = controls[:0], quotes[:0]
}

// count records a written frame of quotes in the metrics.
func (w *writer) count(quotes []*Update) {
	m := w.c.hub.opts.Metrics
	tr := w.c.transport
	m.Frames.WithLabelValues(tr).Inc()
	if len(quotes) == 0 {
		return
	}
	m.Delivered.WithLabelValues(tr).Add(float64(len(quotes)))
	oldest := int64(0)
	for _, u := range quotes {
		if !u.Snapshot && (oldest == 0 || u.FetchedAt < oldest) {
			oldest = u.FetchedAt
		}
	}
	if oldest > 0 {
		m.Latency.WithLabelValues(tr).Observe(max(0, float64(w.c.hub.opts.Now().UnixMilli()-oldest)/1000))
	}
}

// run writes on a goroutine of its own until the outbox is empty.
func (w *writer) run() {
	defer w.wg.Done()
	for {
		wrote, _, held, ce, err := w.write(false)
		if held {
			return
		}
		if err = orClose(err, ce); err != nil {
			w.stop(err)
			return
		}
		if !wrote && w.restLocked() {
			return
		}
	}
}

// writePooled is one turn on a pool goroutine: one non-blocking write of
// everything pending. Then the client goes back to the end of the queue if
// more came, rests if nothing did, or goes on on a goroutine of its own
// when the socket did not take it all or the writer ends (a close
// handshake waits for the peer).
func (c *Client) writePooled() {
	w := &c.w
	_, kept, held, ce, err := w.write(true)
	switch {
	case held:
		w.wg.Done()
	case kept:
		go func() {
			if err := orClose(w.finish(), ce); err != nil {
				w.stopDone(err)
				return
			}
			w.run()
		}()
	case orClose(err, ce) != nil:
		go w.stopDone(orClose(err, ce))
	case w.restLocked():
		w.wg.Done()
	default:
		c.mu.Lock()
		w.since = w.now()
		c.mu.Unlock()
		if !c.hub.queueWrite(c) {
			go w.run()
		}
	}
}

// orClose is err, or the requested close when the write went well.
func orClose(err error, ce *CloseError) error {
	if err == nil && ce != nil {
		return ce
	}
	return err
}

// restLocked ends the writer's turn when there is nothing left to write:
// it reports true, with the writer no longer running, or false (more came).
func (w *writer) restLocked() bool {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if !w.c.pendingLocked() || w.c.closed {
		w.running = false
		return true
	}
	return false
}

// stop ends the writer for good and hands err to end.
func (w *writer) stop(err error) {
	w.c.mu.Lock()
	w.ended = true
	w.c.mu.Unlock()
	w.end(err)
}

// stopDone is stop for a writer that is then done (a pooled one).
func (w *writer) stopDone(err error) {
	defer w.wg.Done()
	w.stop(err)
}

// Progressed tells the hub that the write in progress moved: the socket
// took more of it, or the peer of a held writer read some of what it had
// (see Pacer), so the peer is reading. The sweeper closes a client only
// when its write has not moved for SlowTimeout, so a client that reads
// slowly but steadily is not taken for a stuck one. It is cheap (one
// atomic compare-and-swap) and may be called from any goroutine; outside
// a write or a hold it does nothing.
func (c *Client) Progressed() {
	if v := c.w.moved.Load(); v != 0 {
		c.w.moved.CompareAndSwap(v, c.w.now())
	}
}

// AbortSlow closes the client as a slow consumer (4000), counted, once.
// The hub's sweeper calls it for a write that has not moved for
// SlowTimeout; a transport calls it when it sees by other means that the
// peer has taken nothing for that long (a WebSocket's pinger watching the
// socket's acknowledgements while nothing is being written).
func (c *Client) AbortSlow() {
	c.abortOnce.Do(func() {
		c.hub.opts.Metrics.SlowDisconnects.Inc()
		c.hub.opts.Logger.Info().Str("session", c.id).Str("transport", c.transport).Msg("closing slow consumer")
		c.t.Abort(ErrSlowConsumer.Code, ErrSlowConsumer.Reason)
	})
}

// drain takes everything pending, into the writer's reused slices ctl and
// q. Only the writer calls it.
func (c *Client) drain(ctl [][]byte, q []*Update) (controls [][]byte, quotes []*Update, ce *CloseError, conflated int) {
	c.mu.Lock()
	controls = append(ctl[:0], c.controls...)
	clear(c.controls)
	c.controls = c.controls[:0]
	quotes = q[:0]
	for _, st := range c.order {
		st.queued = false
		if st.pending != nil {
			quotes = append(quotes, st.pending)
			st.pending = nil
		}
	}
	clear(c.order)
	c.order = c.order[:0]
	ce = c.closeReq
	conflated = c.conflated
	c.conflated = 0
	due := c.folioDue
	c.folioDue = false
	c.mu.Unlock()
	if v := c.takeValuation(due); v != nil {
		controls = append(controls, v)
	}
	return controls, quotes, ce, conflated
}
