// Package sim is quotehub's embedded default upstream: a simulated
// market-data provider that needs no network, so that a new user can start
// the hub and watch live-looking prices, and so that tests and benchmarks
// have an upstream they fully control.
//
// Prices follow a geometric random walk per symbol, rounded to the tick size
// of the symbol's market (KRX price bands, Upbit KRW price bands, US cents),
// and respect the market calendar: a closed market's price does not move.
// The walk is deterministic for a given seed: two providers with the same
// Options and the same sequence of Fetch calls and clock readings return the
// same quotes. Knobs make the provider slow (Latency), flaky (FailRate) or
// down (Down), at construction or at run time, so that the hub's error paths
// can be exercised.
//
// Per-symbol state is created lazily on the first Fetch of a symbol, so a
// catalogue of tens of thousands of Synthetic symbols costs next to nothing
// until they are used.
package sim

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"quotehub"
	"quotehub/internal/backoff"
)

// Name is the provider name reported by Provider.Name and in Quote.Source.
const Name = "sim"

// DefaultMaxBatch is the batch limit used when Options.MaxBatch is zero.
const DefaultMaxBatch = 100

// Options configure a Provider. The zero value is a usable configuration:
// the built-in catalogue, seed 1, the system clock, no latency and no
// failures.
type Options struct {
	// Symbols are the symbols the provider can quote; Fetch reports any
	// other symbol as unknown. Nil or empty means Catalog(). Pass
	// append(Catalog(), Synthetic(n)...) for a bigger universe. When a
	// symbol appears twice, the first entry wins.
	Symbols []quotehub.SymbolInfo

	// Seed seeds the random walk; zero means 1. The same seed, symbols and
	// sequence of Fetch calls with the same Now readings give the same
	// quotes.
	Seed int64

	// Now is the clock that drives the walk and the market calendar; nil
	// means time.Now.
	Now func() time.Time

	// Latency is added to every Fetch before it answers (a slow upstream).
	// A context that ends first makes Fetch return the context's error.
	// Zero or negative means no delay. See also Provider.SetLatency.
	Latency time.Duration

	// FailRate is the probability, in [0, 1], that a whole Fetch fails with
	// an upstream_unavailable error (a flaky upstream). Zero means never, 1
	// means always; values outside the range are clamped. The draws are
	// deterministic for a given Seed and call number. See also
	// Provider.SetFailRate.
	FailRate float64

	// Down makes every Fetch fail with an upstream_unavailable error (an
	// upstream that is down). False, the default, means up. See also
	// Provider.SetDown.
	Down bool

	// MaxBatch is the most symbols one Fetch accepts; zero or negative means
	// DefaultMaxBatch (100).
	MaxBatch int

	// Volatility scales the size of price moves; zero or negative means 1.0,
	// a realistic intraday volatility for each market.
	Volatility float64

	// ChangeEveryFetch makes the price of every symbol whose market is open
	// change on every Fetch, so that a benchmark's offered load is exact.
	// False, the default, moves each symbol with a realistic probability
	// per Fetch (about 70% for crypto, 50% for stocks); a symbol that did
	// not move returns exactly the value of its previous quote.
	ChangeEveryFetch bool
}

// Provider is a simulated quotehub.Provider. It is safe for concurrent use;
// create it with New.
type Provider struct {
	entries     map[string]*entry // read-only after New
	shards      [nShards]shard
	seed        uint64
	now         func() time.Time
	maxBatch    int
	vol         float64
	changeEvery bool

	down     atomic.Bool
	latency  atomic.Int64  // time.Duration
	failRate atomic.Uint64 // math.Float64bits of a value in [0, 1]

	calls          atomic.Int64
	symbolsFetched atomic.Int64
	candleCalls    atomic.Int64
}

var _ quotehub.Provider = (*Provider)(nil)

const nShards = 64

// shard guards the state of the entries assigned to it; padded so that two
// shards never share a cache line.
type shard struct {
	mu sync.Mutex
	_  [56]byte
}

// entry is one quotable symbol.
type entry struct {
	info  quotehub.SymbolInfo
	cls   *class
	cal   *quotehub.Calendar
	shard int
	st    *state // guarded by the shard's mutex; nil until first fetched

	fetches atomic.Int64 // how often Fetch was asked for this symbol
}

// New returns a Provider configured by opts (see Options for defaults). It
// only indexes the symbols: price state is created on first Fetch.
func New(opts Options) *Provider {
	syms := opts.Symbols
	if len(syms) == 0 {
		syms = Catalog()
	}
	p := &Provider{
		entries:     make(map[string]*entry, len(syms)),
		seed:        uint64(opts.Seed),
		now:         opts.Now,
		maxBatch:    opts.MaxBatch,
		vol:         opts.Volatility,
		changeEvery: opts.ChangeEveryFetch,
	}
	if p.seed == 0 {
		p.seed = 1
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.maxBatch <= 0 {
		p.maxBatch = DefaultMaxBatch
	}
	if !(p.vol > 0) || math.IsInf(p.vol, 0) {
		p.vol = 1
	}
	all := make([]entry, len(syms)) // one allocation for the whole universe
	for i, info := range syms {
		if _, dup := p.entries[info.Symbol]; dup {
			continue
		}
		e := &all[i]
		*e = entry{
			info:  info,
			cls:   classOf(info.Exchange),
			cal:   quotehub.CalendarOf(info.Exchange),
			shard: i % nShards,
		}
		p.entries[info.Symbol] = e
	}
	p.SetLatency(opts.Latency)
	p.SetFailRate(opts.FailRate)
	p.SetDown(opts.Down)
	return p
}

// Name returns "sim".
func (p *Provider) Name() string { return Name }

// MaxBatch returns the most symbols one Fetch accepts (Options.MaxBatch,
// default 100).
func (p *Provider) MaxBatch() int { return p.maxBatch }

// SetDown switches the simulated outage on or off: while down, every Fetch
// fails with an upstream_unavailable error. Safe for concurrent use.
func (p *Provider) SetDown(down bool) { p.down.Store(down) }

// SetLatency sets the delay added to every later Fetch; zero or negative
// means none. Safe for concurrent use.
func (p *Provider) SetLatency(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.latency.Store(int64(d))
}

// SetFailRate sets the probability, clamped to [0, 1] (NaN counts as 0),
// that a later Fetch fails as a whole. Safe for concurrent use.
func (p *Provider) SetFailRate(rate float64) {
	switch {
	case !(rate > 0): // also NaN
		rate = 0
	case rate > 1:
		rate = 1
	}
	p.failRate.Store(math.Float64bits(rate))
}

// Calls returns the number of Fetch calls so far, failed ones included.
func (p *Provider) Calls() int64 { return p.calls.Load() }

// SymbolsFetched returns the total number of symbols passed to Fetch so far,
// failed calls and unknown symbols included.
func (p *Provider) SymbolsFetched() int64 { return p.symbolsFetched.Load() }

// FetchCount returns how many times Fetch was asked for symbol (a failed
// call that got past the batch-size, context, down and fail-rate checks
// counts; those checks reject the whole call first).
func (p *Provider) FetchCount(symbol string) int64 {
	if e, ok := p.entries[symbol]; ok {
		return e.fetches.Load()
	}
	return 0
}

// FetchedSymbols returns, in no order, every symbol Fetch has quoted at
// least once: the symbols the hub has spent upstream requests on.
func (p *Provider) FetchedSymbols() []string {
	var out []string
	for sym, e := range p.entries {
		if e.fetches.Load() > 0 {
			out = append(out, sym)
		}
	}
	return out
}

// Fetch returns the current quotes of symbols, at most one per distinct
// symbol, in request order. It implements quotehub.Provider:
//
//   - more than MaxBatch symbols: no quotes and a too_many_symbols error;
//   - ctx already done, or done during the simulated latency: ctx.Err();
//   - down, or a failure drawn with FailRate: no quotes and an
//     upstream_unavailable error;
//   - symbols not in Options.Symbols get no quote and are reported in a
//     quotehub.FetchErrors with an unknown_symbol *quotehub.Error, while the
//     known symbols still get their quotes (a partial failure).
//
// Each quote has every field but Seq and FetchedAt set, and passes
// Validate. A symbol whose market is closed is not moved: it returns its
// last price with Market "closed" and TradeTime at the last session close.
func (p *Provider) Fetch(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	call := p.calls.Add(1)
	p.symbolsFetched.Add(int64(len(symbols)))
	if len(symbols) > p.maxBatch {
		return nil, quotehub.Errorf(quotehub.ETooManySymbols,
			"sim: %d symbols in one fetch, at most %d", len(symbols), p.maxBatch)
	}
	if err := p.delay(ctx); err != nil {
		return nil, err
	}
	if p.down.Load() {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "sim: upstream is down")
	}
	if rate := math.Float64frombits(p.failRate.Load()); rate > 0 {
		if rate >= 1 || unitFloat(mix64(p.seed*golden^uint64(call)*0xd1342543de82ef95)) < rate {
			return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "sim: simulated upstream failure")
		}
	}

	now := p.now()
	quotes := make([]quotehub.Quote, 0, len(symbols))
	var ferrs quotehub.FetchErrors
	for _, sym := range symbols {
		e, ok := p.entries[sym]
		if !ok {
			if ferrs == nil {
				ferrs = make(quotehub.FetchErrors)
			}
			ferrs[sym] = quotehub.Errorf(quotehub.EUnknownSymbol, "sim: unknown symbol %q", sym)
			continue
		}
		e.fetches.Add(1)
		mu := &p.shards[e.shard].mu
		mu.Lock()
		q, fresh := p.quote(e, now, call)
		mu.Unlock()
		if fresh {
			quotes = append(quotes, q)
		}
	}
	if ferrs != nil {
		return quotes, ferrs
	}
	return quotes, nil
}

// delay waits the configured latency; it fails when ctx ends first.
func (p *Provider) delay(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := time.Duration(p.latency.Load()); d > 0 {
		if err := backoff.Sleep(ctx, d); err != nil {
			return err
		}
		return ctx.Err()
	}
	return nil
}

// quote updates the state of e for a fetch at now and returns its quote;
// fresh is false when this call already quoted e (a duplicate symbol). The
// caller holds e's shard lock.
func (p *Provider) quote(e *entry, now time.Time, call int64) (q quotehub.Quote, fresh bool) {
	open := e.cal.IsOpen(now)
	key := e.sessionKey(now, open)
	st := e.st
	switch {
	case st == nil:
		st = p.newState(e, now, open, key)
		e.st = st
	case st.stamp == call:
		return quotehub.Quote{}, false
	case open:
		p.advance(e, st, now, key)
	default:
		p.settle(e, st, now, key)
	}
	st.stamp = call
	market := quotehub.MarketClosed
	if open {
		market = quotehub.MarketOpen
	}
	return e.quoteOf(st, market), true
}

var _ quotehub.Seeder = (*Provider)(nil)

// Seed implements quotehub.Seeder: the walk of q.Symbol continues from q
// (its price, reference price, volume and trade time), as if this provider
// had produced it, so that a node taking over a symbol in a cluster goes on
// from the price the cluster last served instead of jumping back to its own
// start. The symbol's random generator is kept, so a seeded walk is still
// deterministic. Quotes of another source, of unknown symbols, or without
// a usable price are ignored.
func (p *Provider) Seed(q quotehub.Quote) {
	e, ok := p.entries[q.Symbol]
	if !ok || q.Source != Name || !(q.Price > 0) || math.IsInf(q.Price, 0) {
		return
	}
	now := p.now()
	open := e.cal.IsOpen(now)
	key := e.sessionKey(now, open)
	mu := &p.shards[e.shard].mu
	mu.Lock()
	defer mu.Unlock()
	st := e.st
	if st == nil {
		st = p.newState(e, now, open, key)
		e.st = st
	}
	st.price = e.cls.round(q.Price)
	st.mid = st.price
	if q.Has&quotehub.HasPrevClose != 0 && q.PrevClose > 0 && !math.IsInf(q.PrevClose, 0) {
		st.prevClose = q.PrevClose
	}
	if q.Has&quotehub.HasVolume != 0 && q.Volume >= 0 && !math.IsInf(q.Volume, 0) {
		st.volume = q.Volume
	}
	st.key = key
	if q.TradeTime > 0 {
		st.tradeTime = q.TradeTime
		st.lastMove = min(q.TradeTime*int64(time.Millisecond), now.UnixNano())
		if q.TradeTime < key {
			// The quote predates the current session (or UTC day): the
			// next fetch rolls its price into the reference price.
			st.key = key - 1
		}
	}
}
