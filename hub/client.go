package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Update is one quote, encoded once, shared by every subscriber it is
// offered to. It is never modified after it is created.
type Update struct {
	Symbol    string
	Seq       uint64
	FetchedAt int64  // Unix ms, for the delivery-latency histogram
	JSON      []byte // the quote object of the wire protocol
	Snapshot  bool   // sent because of a subscribe, not a change
}

// Transport writes a client's batches to its socket. Write is only ever
// called by the client's writer (one at a time); Abort may be called from
// any goroutine, at most once.
type Transport interface {
	// Write writes the control frames in order, then all quotes in one
	// frame or one chunk. An error ends the writer for good.
	Write(controls [][]byte, quotes []*Update) error
	// Abort ends the connection from outside the writer, with a close code
	// and reason where the transport has them. It must not block for long.
	Abort(code int, reason string)
}

// TryWriter is a Transport that can write without blocking. A client of
// such a transport is written by the hub's pool of writer goroutines: a
// burst to thousands of clients then costs no goroutine start (and stack
// growth) per client, and a client whose socket cannot take its batch
// continues on a goroutine of its own, so it never holds up the pool.
type TryWriter interface {
	Transport
	// TryWrite is Write without blocking: it writes what the socket takes
	// at once and reports whether that was everything. If it was not, the
	// transport keeps the rest, and nothing else may be written before
	// FinishWrite has written it.
	TryWrite(controls [][]byte, quotes []*Update) (done bool, err error)
	// FinishWrite writes the rest a TryWrite kept, blocking as Write does.
	FinishWrite() error
}

// Close codes of the wire protocol.
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001
	CloseProtocol     = 1002
	CloseInvalidData  = 1007
	ClosePolicy       = 1008
	CloseTooBig       = 1009
	CloseInternal     = 1011
	CloseTryAgain     = 1013
	CloseSlowConsumer = 4000
)

// CloseError ends a writer with a close code the transport should send,
// after everything queued before it was written.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return e.Reason }

// ErrSlowConsumer is the reason of a close for draining nothing for too long.
var ErrSlowConsumer = &CloseError{Code: CloseSlowConsumer, Reason: "slow consumer"}

var clientNum atomic.Uint64

// Client is one connection's session: its subscriptions, its outbox and the
// protocol state shared by WebSocket and SSE.
type Client struct {
	hub       *Hub
	t         Transport
	transport string
	num       uint64
	id        string

	mu        sync.Mutex
	syms      map[string]*symState // every symbol ever subscribed; keeps seq across unsubscribe
	nsubs     int
	order     []*symState // symbols with a pending update, in arrival order
	controls  [][]byte
	closeReq  *CloseError
	closed    bool
	conflated int

	// Writer state (StartOnDemand), guarded by mu.
	onDemand      bool // StartOnDemand was called: wakes may start a writer
	writerRunning bool
	wakePending   bool // an offer asked for a wake its caller has not made yet
	ended         bool
	end           func(error)
	pooled        bool  // t is a TryWriter and the hub's writer pool writes it
	queuedAt      int64 // Unix ns when the pooled writer was queued
	writers       sync.WaitGroup
	closeOnce     sync.Once
	abortOnce     sync.Once
	writeMoved    atomic.Int64 // Unix ns when the current write began or last moved (Progressed); 0 when idle

	// Reader-side state, used only by the goroutine that reads requests.
	errTimes []time.Time
	tokens   float64
	tokensAt time.Time

	// Writer-side buffers, reused across flushes.
	outCtl [][]byte
	outQ   []*Update
}

// symState is one client's state for one symbol. idx is guarded by the
// registry shard; the rest by the client's mu.
type symState struct {
	c          *Client
	symbol     string
	idx        int
	subscribed bool
	queued     bool
	seq        uint64
	pending    *Update
}

// NewClient registers a connection. transport names it in metrics ("ws",
// "sse"). The caller must call StartOnDemand once it can write, and Close
// when the connection ends. It returns nil if the hub is at its connection limit (see Admit).
func (h *Hub) NewClient(t Transport, transport string) *Client {
	if int(h.nconns.Add(1)) > h.opts.MaxConnections {
		h.nconns.Add(-1)
		return nil
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	c := &Client{
		hub: h, t: t, transport: transport, num: clientNum.Add(1), id: hex.EncodeToString(idb[:]),
		syms:   make(map[string]*symState),
		tokens: float64(h.opts.OpsBurst), tokensAt: h.opts.Now(),
	}
	_, c.pooled = t.(TryWriter)
	c.pooled = c.pooled && h.opts.Writers > 0
	cs := h.clientShard(c)
	cs.mu.Lock()
	cs.m[c] = struct{}{}
	cs.mu.Unlock()
	h.opts.Metrics.Connections.WithLabelValues(transport).Inc()
	return c
}

// ID is the session id sent in the welcome frame.
func (c *Client) ID() string { return c.id }

// Subscribed returns how many symbols the client holds.
func (c *Client) Subscribed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nsubs
}

// Close unsubscribes everything and unregisters the client. It is safe to
// call more than once and from any goroutine; it waits for a writer that is
// still writing.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		var subs []*symState
		for _, st := range c.syms {
			if st.subscribed {
				st.subscribed = false
				st.pending = nil
				subs = append(subs, st)
			}
		}
		c.nsubs = 0
		c.order = nil
		c.controls = nil
		conflated := c.conflated
		c.conflated = 0
		c.mu.Unlock()
		if conflated > 0 {
			c.hub.opts.Metrics.Conflated.Add(float64(conflated))
		}
		for _, st := range subs {
			c.hub.remove(st)
		}
		c.writers.Wait() // an on-demand writer may be finishing a write
		cs := c.hub.clientShard(c)
		cs.mu.Lock()
		delete(cs.m, c)
		cs.mu.Unlock()
		c.hub.nconns.Add(-1)
		c.hub.opts.Metrics.Connections.WithLabelValues(c.transport).Dec()
	})
}

// offer queues u for the client unless it already has that seq or newer
// for the symbol. resend names the one seq that may be queued again: the
// seq a client held before it subscribed again (0 for live updates, whose
// seq is never 0). It never blocks.
//
// It does not wake the writer: it returns true when the caller must call
// wakeWriter once it has offered everything it has (the first offer since the
// writer last woke). A publish of a whole refresh thus fills every outbox
// before any writer runs, so each client gets one frame, and the publisher
// is not starved by thousands of writers it woke halfway.
func (c *Client) offer(st *symState, u *Update, resend uint64) (mustWake bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.subscribed || u.Seq < st.seq || (u.Seq == st.seq && u.Seq != resend) {
		return false
	}
	if st.pending != nil {
		c.conflated++
	}
	st.pending = u
	st.seq = u.Seq
	if !st.queued {
		st.queued = true
		c.order = append(c.order, st)
	}
	if c.wakePending || c.writerRunning {
		return false // a wake is owed already, or the running writer will drain it
	}
	c.wakePending = true
	return true
}

// wakeWriter wakes the writer after offers that asked for it.
func (c *Client) wakeWriter() {
	c.mu.Lock()
	c.wakePending = false
	c.wakeLocked()
}

// wakeLocked starts the writer if none runs (and StartOnDemand was
// called; before that, what is queued waits for it) and unlocks c.mu.
func (c *Client) wakeLocked() {
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// SendControl queues a control frame (welcome, subscribed, pong, error); it
// is written before any quote queued after it.
func (c *Client) SendControl(frame []byte) {
	c.mu.Lock()
	if !c.closed {
		c.controls = append(c.controls, frame)
	}
	c.wakeLocked()
}

// closeAfterFlush ends the writer with ce once everything queued so far
// has been written.
func (c *Client) closeAfterFlush(ce *CloseError) {
	c.mu.Lock()
	if c.closeReq == nil {
		c.closeReq = ce
	}
	c.wakeLocked()
}

// drain takes everything pending. Only the writer calls it.
func (c *Client) drain() (controls [][]byte, quotes []*Update, ce *CloseError, conflated int) {
	c.mu.Lock()
	controls = append(c.outCtl[:0], c.controls...)
	clear(c.controls)
	c.controls = c.controls[:0]
	quotes = c.outQ[:0]
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
	c.mu.Unlock()
	return controls, quotes, ce, conflated
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
	c.onDemand, c.end = true, end
	start := c.pendingLocked() && c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// pendingLocked reports whether anything waits to be written. c.mu is held.
func (c *Client) pendingLocked() bool {
	return len(c.controls) > 0 || len(c.order) > 0 || c.closeReq != nil
}

// startWriter runs a claimed on-demand writer: on the hub's writer pool
// when the transport can write without blocking, else on a goroutine.
func (c *Client) startWriter() {
	if c.pooled && c.hub.queueWrite(c) {
		return
	}
	go c.writeOnDemand()
}

// claimWriterLocked reports whether the caller should start an on-demand
// writer, and marks one as running. c.mu is held.
func (c *Client) claimWriterLocked() bool {
	if !c.onDemand || c.writerRunning || c.closed || c.ended {
		return false
	}
	c.writerRunning = true
	c.writers.Add(1)
	if c.pooled {
		c.queuedAt = time.Now().UnixNano()
	}
	return true
}

// writeOnDemand drains the outbox until it is empty, then exits.
func (c *Client) writeOnDemand() {
	defer c.writers.Done()
	for {
		wrote, ce, err := c.flush()
		if err == nil && ce != nil {
			err = ce
		}
		if err != nil {
			c.endWriter(err)
			return
		}
		if !wrote && c.idleLocked() {
			return
		}
	}
}

// idleLocked ends the writer's turn when there is nothing left to write:
// it reports true, with writerRunning cleared, or false (more came).
func (c *Client) idleLocked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pendingLocked() || c.closed {
		c.writerRunning = false
		return true
	}
	return false
}

// endWriter ends the client's writer for good and hands err to end.
func (c *Client) endWriter(err error) {
	c.mu.Lock()
	c.ended = true // no writer ever again
	c.mu.Unlock()
	c.end(err)
}

// flush writes everything pending (after the write delay, if any) and
// records the metrics. It reports whether it wrote anything, and the close
// that was requested, if any.
func (c *Client) flush() (wrote bool, ce *CloseError, err error) {
	if d := c.hub.opts.WriteDelay; d > 0 {
		time.Sleep(d)
	}
	controls, quotes, ce := c.take()
	if len(controls) == 0 && len(quotes) == 0 {
		return false, ce, nil
	}
	c.writeMoved.Store(c.hub.opts.Now().UnixNano())
	err = c.t.Write(controls, quotes)
	c.writeMoved.Store(0)
	c.wrote(controls, quotes, err)
	return true, ce, err
}

// take drains the outbox for a write and counts what was conflated.
func (c *Client) take() (controls [][]byte, quotes []*Update, ce *CloseError) {
	controls, quotes, ce, conflated := c.drain()
	if conflated > 0 {
		c.hub.opts.Metrics.Conflated.Add(float64(conflated))
	}
	return controls, quotes, ce
}

// wrote records a finished write of controls and quotes (err: it failed)
// and gives their slices back for the next drain.
func (c *Client) wrote(controls [][]byte, quotes []*Update, err error) {
	clear(controls)
	c.outCtl = controls[:0]
	defer func() {
		clear(quotes)
		c.outQ = quotes[:0]
	}()
	if err != nil {
		return
	}
	m := c.hub.opts.Metrics
	m.Frames.WithLabelValues(c.transport).Inc()
	if len(quotes) > 0 {
		m.Delivered.WithLabelValues(c.transport).Add(float64(len(quotes)))
		oldest := int64(0)
		for _, u := range quotes {
			if !u.Snapshot && (oldest == 0 || u.FetchedAt < oldest) {
				oldest = u.FetchedAt
			}
		}
		if oldest > 0 {
			m.Latency.WithLabelValues(c.transport).Observe(max(0, float64(c.hub.opts.Now().UnixMilli()-oldest)/1000))
		}
	}
}

// writePooled is one turn of a pooled writer on a pool goroutine: one
// non-blocking write of everything pending. Then the client goes back to
// the end of the queue if more came, rests if nothing did, or — when the
// socket did not take it all, or the writer ends — goes on on a goroutine
// of its own, so the pool never waits on one client.
func (c *Client) writePooled() {
	if d := c.hub.opts.WriteDelay; d > 0 {
		if wait := time.Duration(c.queuedAt + int64(d) - time.Now().UnixNano()); wait > 0 {
			time.Sleep(wait) // once per burst: the queue is in queuing order
		}
	}
	controls, quotes, ce := c.take()
	if len(controls) == 0 && len(quotes) == 0 {
		switch {
		case ce != nil:
			go c.endPooled(ce)
		case c.idleLocked():
			c.writers.Done()
		default:
			c.requeue()
		}
		return
	}
	c.writeMoved.Store(c.hub.opts.Now().UnixNano())
	done, err := c.t.(TryWriter).TryWrite(controls, quotes)
	if err == nil && !done {
		// The socket is full: finish on a goroutine of its own, which
		// then writes on as writeOnDemand does.
		go func() {
			err := c.t.(TryWriter).FinishWrite()
			c.writeMoved.Store(0)
			c.wrote(controls, quotes, err)
			if err == nil && ce != nil {
				err = ce
			}
			if err != nil {
				c.endPooled(err)
				return
			}
			c.writeOnDemand()
		}()
		return
	}
	c.writeMoved.Store(0)
	c.wrote(controls, quotes, err)
	if err == nil && ce != nil {
		err = ce
	}
	switch {
	case err != nil:
		go c.endPooled(err) // a close handshake waits for the peer
	case c.idleLocked():
		c.writers.Done()
	default:
		c.requeue()
	}
}

// endPooled ends a pooled writer: endWriter, then the writer is done.
func (c *Client) endPooled(err error) {
	defer c.writers.Done()
	c.endWriter(err)
}

// requeue puts a pooled writer with more to write back in the queue.
func (c *Client) requeue() {
	c.mu.Lock()
	c.queuedAt = time.Now().UnixNano()
	c.mu.Unlock()
	if !c.hub.queueWrite(c) {
		go c.writeOnDemand()
	}
}

// Progressed tells the hub that the write in progress moved: the socket
// took more of it, so the peer is reading. The sweeper closes a client
// only when its write has not moved for SlowTimeout, so a client that
// reads slowly but steadily is not taken for a stuck one. It is cheap
// (one atomic compare-and-swap) and may be called from any goroutine;
// outside a write it does nothing.
func (c *Client) Progressed() {
	if v := c.writeMoved.Load(); v != 0 {
		c.writeMoved.CompareAndSwap(v, c.hub.opts.Now().UnixNano())
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

// IsClose reports whether err is a *CloseError and returns it.
func IsClose(err error) (*CloseError, bool) {
	var ce *CloseError
	ok := errors.As(err, &ce)
	return ce, ok
}
