package hub

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/internal/shard"
)

// Options configure a Hub. Zero values take the documented defaults.
type Options struct {
	// Cache answers snapshots on subscribe. Required.
	Cache quotehub.Cache
	// Catalog decides which well-formed symbols exist. Required.
	Catalog quotehub.Catalog
	// Node is this node's name, sent in the welcome frame.
	Node string
	// MaxSymbols is the most symbols one connection may hold, and the most
	// distinct names one subscribe may carry. Default 200.
	MaxSymbols int
	// MaxMessageBytes is the largest client frame, announced in welcome (the
	// transport enforces it). Default 4096.
	MaxMessageBytes int
	// SlowTimeout is how long a client may drain nothing (a write that
	// does not move: see Client.Progressed) before it is closed with 4000.
	// Default 30 s.
	SlowTimeout time.Duration
	// MaxErrors is how many error frames a connection may get within
	// ErrorWindow; the next one is sent and the connection closed with 1008.
	// Defaults 10 and 10 s.
	MaxErrors   int
	ErrorWindow time.Duration
	// OpsPerSecond and OpsBurst bound the requests (subscribe, unsubscribe,
	// ping, malformed frames) one connection may send: a token bucket; a
	// request over it gets a rate_limited error. Defaults 200/s and 400.
	OpsPerSecond float64
	OpsBurst     int
	// MaxConnections is the most connections the hub holds; NewClient
	// refuses more. Default 100,000.
	MaxConnections int
	// WriteDelay is how long a woken writer waits before it drains the
	// outbox, so that the quotes of one refresh, which arrive in several
	// batches, leave in one frame and one system call. It adds at most that
	// much latency. Default 0 (write at once).
	WriteDelay time.Duration
	// Writers is how many goroutines write the clients whose transport can
	// write without blocking (TryWriter). Default GOMAXPROCS; negative: none,
	// every client's writer is a goroutine of its own while it writes.
	Writers int
	// Candles, when set, lets sessions subscribe to candle streams (see
	// candles.go); without it a subscribe naming intervals is refused.
	Candles CandleSource
	// MaxCandleStreams is the most candle streams, (symbol, interval)
	// pairs, one connection may hold. Default 2 × MaxSymbols.
	MaxCandleStreams int
	// OnActive is called when a symbol gets its first local subscriber, and
	// OnIdle when it loses its last. They are called in order, under the
	// registry lock of the symbol: they must be quick, must not block and
	// must not call back into the hub.
	OnActive func(symbol string)
	OnIdle   func(symbol string)
	// Lists reads the lists a signed-in session follows (see Client.Follow).
	// Default: none; a follow is answered unavailable.
	Lists Lists
	// Metrics receives the hub's measurements. Default: unregistered.
	Metrics *Metrics
	// Logger is the hub's logger. Default: disabled.
	Logger *zerolog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxSymbols, 200)
	def(&o.MaxMessageBytes, 4096)
	def(&o.MaxErrors, 10)
	def(&o.OpsBurst, 400)
	def(&o.MaxConnections, 100_000)
	def(&o.MaxCandleStreams, 2*o.MaxSymbols)
	if o.Writers == 0 {
		o.Writers = runtime.GOMAXPROCS(0)
	}
	if o.SlowTimeout <= 0 {
		o.SlowTimeout = 30 * time.Second
	}
	if o.ErrorWindow <= 0 {
		o.ErrorWindow = 10 * time.Second
	}
	if o.OpsPerSecond <= 0 {
		o.OpsPerSecond = 200
	}
	if o.OnActive == nil {
		o.OnActive = func(string) {}
	}
	if o.OnIdle == nil {
		o.OnIdle = func(string) {}
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		l := zerolog.Nop()
		o.Logger = &l
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

const numShards = 64

// Hub is the registry of clients and subscriptions of one node.
type Hub struct {
	opts    Options
	shards  [numShards]regShard
	clients [16]clientShard
	nconns  atomic.Int64
	users   userIndex
	candles *candleHub // nil without Options.Candles
	done    chan struct{}
	stop    sync.Once
	wg      sync.WaitGroup

	// The writer pool: writeQ holds the pooled clients whose writer is
	// claimed, each at most once, so its capacity (MaxConnections) is never
	// reached. Once poolClosed, writers run on goroutines of their own.
	writeQ     chan *Client
	poolMu     sync.RWMutex
	poolClosed bool
	poolStop   chan struct{}
	poolWG     sync.WaitGroup

	wheel wheel // wakes held writers (see writer.hold)
}

// regShard holds the topics of the symbols that hash to it.
type regShard struct {
	mu     sync.RWMutex
	topics map[string]*topic
}

// topic is the subscriber list of one symbol on this node.
type topic struct {
	subs []*symState
}

type clientShard struct {
	mu sync.Mutex
	m  map[*Client]struct{}
}

// New returns a running hub. Call Shutdown to close its clients and stop it.
func New(opts Options) *Hub {
	opts.setDefaults()
	h := &Hub{opts: opts, done: make(chan struct{})}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*topic)
	}
	for i := range h.clients {
		h.clients[i].m = make(map[*Client]struct{})
	}
	h.wg.Add(1)
	go h.sweep()
	if opts.Candles != nil {
		h.candles = newCandleHub(h, opts.Candles)
		h.wg.Add(1)
		go h.candles.run()
	}
	if opts.Writers > 0 {
		h.writeQ, h.poolStop = make(chan *Client, opts.MaxConnections), make(chan struct{})
		h.poolWG.Add(opts.Writers)
		for range opts.Writers {
			go h.poolWriter()
		}
	} else {
		h.poolClosed = true
	}
	return h
}

// poolWriter is one of the writer pool's goroutines. When the pool stops,
// the clients still queued go on on goroutines of their own.
func (h *Hub) poolWriter() {
	defer h.poolWG.Done()
	for {
		select {
		case c := <-h.writeQ:
			c.writePooled()
		case <-h.poolStop:
			for {
				select {
				case c := <-h.writeQ:
					go c.w.run()
				default:
					return
				}
			}
		}
	}
}

// queueWrite queues a claimed pooled writer; false when the pool has
// stopped (the caller runs the writer itself).
func (h *Hub) queueWrite(c *Client) bool {
	h.poolMu.RLock()
	defer h.poolMu.RUnlock()
	if h.poolClosed {
		return false
	}
	h.writeQ <- c
	return true
}

// stopPool stops the writer pool and waits for its goroutines.
func (h *Hub) stopPool() {
	h.poolMu.Lock()
	closed := h.poolClosed
	h.poolClosed = true
	h.poolMu.Unlock()
	if !closed {
		close(h.poolStop)
	}
	h.poolWG.Wait()
}

// Options returns the hub's options with defaults applied.
func (h *Hub) Options() Options { return h.opts }

// Done is closed when the hub starts shutting down.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Connections returns the number of open clients.
func (h *Hub) Connections() int { return int(h.nconns.Load()) }

// Shutdown makes every client's writer write what is queued and end with
// a 1001 CloseError — WebSockets close with 1001, SSE streams end — then
// waits until every client has closed or ctx ends.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.stop.Do(func() { close(h.done) })
	h.wg.Wait()
	defer h.stopPool()
	// Every writer writes what is queued and then ends with 1001.
	for i := range h.clients {
		cs := &h.clients[i]
		cs.mu.Lock()
		for c := range cs.m {
			c.closeAfterFlush(&CloseError{Code: CloseGoingAway, Reason: "node shutting down"})
		}
		cs.mu.Unlock()
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for h.nconns.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (h *Hub) shard(symbol string) *regShard {
	return &h.shards[shard.Of(symbol, numShards)]
}

// Publish fans quotes out to their local subscribers. Each quote is encoded
// once, and only if the symbol has a subscriber here. It never blocks on a
// client.
func (h *Hub) Publish(quotes []quotehub.Quote) {
	wp := wakePool.Get().(*[]*Client)
	wake := (*wp)[:0]
	for i := range quotes {
		q := &quotes[i]
		s := h.shard(q.Symbol)
		s.mu.RLock()
		if t := s.topics[q.Symbol]; t != nil {
			u := &Update{Symbol: q.Symbol, Seq: q.Seq, FetchedAt: q.FetchedAt, JSON: q.AppendJSON(nil)}
			for _, st := range t.subs {
				if st.c.offer(st, u, 0) {
					wake = append(wake, st.c)
				}
				if st.c.folio.Load() != nil && st.c.noteValued(q) {
					wake = append(wake, st.c)
				}
			}
		}
		s.mu.RUnlock()
	}
	// Writers wake only now, with every quote of the batch in their outbox.
	wakeAll(wp, wake)
	if h.candles != nil && h.candles.active.Load() > 0 {
		h.candles.changed(quotes)
	}
}

// wakeAll wakes the writers of wake, then returns the list (taken from
// wakePool as wp) to the pool.
func wakeAll(wp *[]*Client, wake []*Client) {
	for _, c := range wake {
		c.wakeWriter()
	}
	clear(wake)
	*wp = wake[:0]
	wakePool.Put(wp)
}

// wakePool recycles Publish's list of writers to wake, so a publish to
// thousands of subscribers does not grow a new slice every time.
var wakePool = sync.Pool{New: func() any { s := make([]*Client, 0, 256); return &s }}

// Symbols returns the symbols that have local subscribers.
func (h *Hub) Symbols() []string {
	var out []string
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for sym := range s.topics {
			out = append(out, sym)
		}
		s.mu.RUnlock()
	}
	return out
}

// Subscribers returns how many local clients watch symbol.
func (h *Hub) Subscribers(symbol string) int {
	s := h.shard(symbol)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.topics[symbol]; t != nil {
		return len(t.subs)
	}
	return 0
}

// add puts st into its symbol's topic, and remove takes it out. A client
// flips st.subscribed under its own lock and calls them after unlocking
// (Publish takes a shard's lock, then clients'), so a Close or an
// unsubscribe on another goroutine can remove st before the add of the
// subscribe it undoes has run. st.bal counts the adds minus the removes
// that have run, under the shard's lock, and st is in its topic exactly
// while bal is positive: the flips alternate, so once both have run the
// topic holds st as the last flip says, in whichever order they ran.
func (h *Hub) add(st *symState) {
	s := h.shard(st.symbol)
	s.mu.Lock()
	st.bal++
	if st.bal != 1 {
		s.mu.Unlock()
		return
	}
	t := s.topics[st.symbol]
	if t == nil {
		t = &topic{}
		s.topics[st.symbol] = t
		h.opts.Metrics.LocalActive.Inc()
		h.opts.OnActive(st.symbol)
	}
	st.idx = len(t.subs)
	t.subs = append(t.subs, st)
	s.mu.Unlock()
	h.opts.Metrics.Subscriptions.Inc()
}

// remove takes st out of its symbol's topic (swap with the last entry);
// see add.
func (h *Hub) remove(st *symState) {
	s := h.shard(st.symbol)
	s.mu.Lock()
	st.bal--
	if st.bal != 0 {
		s.mu.Unlock()
		return
	}
	t := s.topics[st.symbol]
	last := len(t.subs) - 1
	moved := t.subs[last]
	t.subs[st.idx] = moved
	moved.idx = st.idx
	t.subs[last] = nil
	t.subs = t.subs[:last]
	st.idx = -1
	if last == 0 {
		delete(s.topics, st.symbol)
		h.opts.Metrics.LocalActive.Dec()
		h.opts.OnIdle(st.symbol)
	} else if cap(t.subs) > 64 && len(t.subs) < cap(t.subs)/4 {
		t.subs = append([]*symState(nil), t.subs...) // give back memory after a crowd leaves
	}
	s.mu.Unlock()
	h.opts.Metrics.Subscriptions.Dec()
}

func (h *Hub) clientShard(c *Client) *clientShard {
	return &h.clients[c.num%uint64(len(h.clients))]
}

// sweep aborts clients whose writer has been stuck in one write, without
// moving, for longer than SlowTimeout. One goroutine for the whole hub, instead of a timer per
// write, keeps the write path free of allocations.
func (h *Hub) sweep() {
	defer h.wg.Done()
	every := h.opts.SlowTimeout / 10
	every = min(max(every, 5*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var stuck []*Client
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		limit := h.opts.Now().Add(-h.opts.SlowTimeout).UnixNano()
		stuck = stuck[:0]
		for i := range h.clients {
			cs := &h.clients[i]
			cs.mu.Lock()
			for c := range cs.m {
				if ws := c.w.moved.Load(); ws != 0 && ws < limit {
					stuck = append(stuck, c)
				}
			}
			cs.mu.Unlock()
		}
		for _, c := range stuck {
			c.AbortSlow()
		}
	}
}
