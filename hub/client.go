package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"quotehub"
)

// Update is one quote, encoded once, shared by every subscriber it is
// offered to. It is never modified after it is created.
type Update struct {
	Symbol    string
	Seq       uint64
	FetchedAt int64  // Unix ms, for the delivery-latency histogram
	JSON      []byte // the quote object of the wire protocol
	Snapshot  bool   // sent because of a subscribe, not a change
	// Interval is set for a candle of that interval (see candles.go); 0
	// for a quote. It sits beside Snapshot, in the padding an Update has
	// anyway, so a quote's Update stays 64 bytes.
	Interval quotehub.Interval
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

// Pacer is a Transport that can tell whether the peer has too much of what
// was written still unread (in flight, or in its own receive buffer, where
// no newer quote can replace it). The writer asks it before each batch and
// writes nothing while it says to hold: what is pending waits in the
// outbox, where newer quotes replace older ones.
type Pacer interface {
	// Hold reports how long the writer should wait before it looks again,
	// or 0 to write now; the hub's wheel wakes the writer then (offers
	// meanwhile do not). It is called only by the client's writer, before
	// each batch, and must be cheap for a peer that keeps up. While it
	// holds, the transport calls Client.Progressed whenever it sees the
	// peer read, so that a peer that reads nothing for SlowTimeout is
	// closed with 4000 as a stuck write would be.
	Hold() time.Duration
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
	user      *quotehub.Principal // whom the session acts for; nil: anonymous
	expiry    *time.Timer         // fires when user's token expires
	folioDue  bool                // a portfolio valuation is due (see follow.go)

	cands map[quotehub.CandleSeries]*candleState // candle streams (see candles.go); guarded by mu

	fmu   sync.Mutex            // guards fol; taken before mu
	fol   *follows              // the lists the session follows
	folio atomic.Pointer[folio] // the valuation of a followed portfolio

	w         writer // the client's writer; its flags are guarded by mu
	closeOnce sync.Once
	abortOnce sync.Once

	// Reader-side state, used only by the goroutine that reads requests.
	// The request budget is a token bucket of its own rather than an
	// x/time/rate Limiter: that carries a mutex and more state on every
	// connection for a check only this one goroutine makes.
	errTimes []time.Time
	tokens   float64
	tokensAt time.Time
}

// symState is one client's state for one symbol. idx is guarded by the
// registry shard; the rest by the client's mu.
type symState struct {
	c          *Client
	symbol     string
	idx        int // its place in its topic's subs; -1 when not there
	bal        int // adds minus removes run (see Hub.add); guarded by the shard's lock
	subscribed bool
	byName     bool // subscribed by name, not only through a followed list
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
	c.w.c, c.w.t = c, t
	c.w.pacer, _ = t.(Pacer)
	if tw, ok := t.(TryWriter); ok && h.opts.Writers > 0 {
		c.w.try = tw
	}
	cs := h.clientShard(c)
	cs.mu.Lock()
	cs.m[c] = struct{}{}
	cs.mu.Unlock()
	h.opts.Metrics.Connections.WithLabelValues(transport).Inc()
	return c
}

// ID is the session id sent in the welcome frame.
func (c *Client) ID() string { return c.id }

// Transport names the client's transport, as given to NewClient.
func (c *Client) Transport() string { return c.transport }

// SetUser records whom the session acts for: the principal of the token
// it was opened with. If p has an expiry, onExpiry runs once then, on a
// timer's goroutine, unless the client has closed by then; it is expected
// to tell the client and end the session (see CloseAfterFlush). Call it
// before the welcome frame (which names the user); a later call replaces
// the principal and its expiry.
func (c *Client) SetUser(p quotehub.Principal, onExpiry func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.user != nil {
		c.hub.users.remove(c.user.UserID, c)
	}
	c.hub.users.add(p.UserID, c)
	c.user = &p
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if p.Expires.IsZero() || onExpiry == nil || c.closed {
		return
	}
	c.expiry = time.AfterFunc(p.Expires.Sub(c.hub.opts.Now()), func() {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed {
			onExpiry()
		}
	})
}

// User returns whom the session acts for; false for an anonymous one.
func (c *Client) User() (quotehub.Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user == nil {
		return quotehub.Principal{}, false
	}
	return *c.user, true
}

// CloseAfterFlush ends the session with a close code (WebSocket) once
// everything queued so far, such as an error frame, has been written.
func (c *Client) CloseAfterFlush(code int, reason string) {
	c.closeAfterFlush(&CloseError{Code: code, Reason: reason})
}

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
		c.folio.Store(nil)
		if c.expiry != nil {
			c.expiry.Stop()
		}
		if c.user != nil {
			c.hub.users.remove(c.user.UserID, c)
		}
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
		if c.w.held {
			c.w.held = false
			c.hub.unholdLocked(c) // a held writer is not looked at again
		}
		conflated := c.conflated
		c.conflated = 0
		c.mu.Unlock()
		if conflated > 0 {
			c.hub.opts.Metrics.Conflated.Add(float64(conflated))
		}
		for _, st := range subs {
			c.hub.remove(st)
		}
		c.closeCandles()
		c.w.wg.Wait() // an on-demand writer may be finishing a write
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
	if c.w.wakePending || c.w.running {
		return false // a wake is owed already, or the running writer will drain it
	}
	c.w.wakePending = true
	return true
}

// wakeWriter wakes the writer after offers that asked for it.
func (c *Client) wakeWriter() {
	c.mu.Lock()
	c.w.wakePending = false
	c.wakeLocked()
}

// wakeLocked starts the writer if none runs (and StartOnDemand was
// called; before that, what is queued waits for it) and unlocks c.mu.
func (c *Client) wakeLocked() {
	start := c.w.claimLocked()
	c.mu.Unlock()
	if start {
		c.w.start()
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

// IsClose reports whether err is a *CloseError and returns it.
func IsClose(err error) (*CloseError, bool) {
	var ce *CloseError
	ok := errors.As(err, &ce)
	return ce, ok
}
