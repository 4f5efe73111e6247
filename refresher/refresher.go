// Package refresher decides what to fetch from the upstreams and when. It
// keeps the active set (symbols someone subscribes to or read within the
// active window), fetches only due active symbols, in batches with bounded
// concurrency, writes them through to the cache with the next seq, and
// publishes the ones that changed. It also answers HTTP reads with
// stale-while-revalidate and a single shared fetch per cold symbol.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
)

// Source is one upstream provider with its own schedule.
type Source struct {
	Provider quotehub.Provider
	// Interval is how often an active symbol of this provider is
	// refreshed. Default 1 s.
	Interval time.Duration
	// Concurrency bounds the provider's requests in flight. Default 4.
	Concurrency int
	// Push streams quotes instead of polling them, when the provider is a
	// quotehub.Streamer: the refresher follows the owned active symbols
	// through the stream and polls them only while the stream is down, for
	// symbols without a value yet, or when a symbol has been silent on the
	// stream for StreamSilence (default 30 s).
	Push          bool
	StreamSilence time.Duration
}

// Options configure a Refresher. Zero values take the documented defaults.
type Options struct {
	Cache   quotehub.Cache     // required
	Bus     quotehub.Bus       // required
	Active  quotehub.ActiveSet // required
	Catalog quotehub.Catalog   // required
	// Sources are the providers; at least one.
	Sources []Source
	// Route names the provider of a catalogue entry. Default: the first
	// source, for every symbol.
	Route func(quotehub.SymbolInfo) string
	// Local lists the symbols with local subscribers; they are re-touched
	// every Heartbeat. Default: none.
	Local func() []string
	// Owns says whether this node refreshes a symbol (in a cluster, whether
	// it holds the symbol's lease). Default: every symbol.
	Owns func(symbol string) bool
	// Degraded says the shared stores are unreachable: the node then
	// refreshes the symbols its own clients use (local subscriptions and
	// recent reads), whoever owns them, so they keep getting live prices.
	// Default: never.
	Degraded func() bool
	// OnRecover is called when Degraded turns false again, after the
	// active set was re-touched; the node re-reads what it missed.
	OnRecover func()
	// FetchLock, when set, makes the fetches of HTTP misses and stale reads
	// single-flight across the cluster: a node fetches only if it takes the
	// symbol's lock; otherwise it waits for the value in the cache.
	FetchLock quotehub.FetchLock
	// Freshness is the age under which a cached quote is fresh. Default 5 s.
	Freshness time.Duration
	// ActiveWindow is how long a symbol stays active after its last use.
	// Default 5 min.
	ActiveWindow time.Duration
	// Heartbeat is how often local symbols are re-touched. Default 30 s.
	Heartbeat time.Duration
	// FetchTimeout is how long a read that misses waits for the upstream.
	// Default 2 s.
	FetchTimeout time.Duration
	// UpstreamTimeout bounds one upstream request. Default 5 s.
	UpstreamTimeout time.Duration
	// OnChanged is called with the changed quotes of the symbols this node
	// owns, once written and published: price alerts are evaluated there,
	// once in the cluster. It runs on the write path and must not block.
	// Default: none.
	OnChanged func([]quotehub.Quote)
	// OnTakeover is called with the cached quote of each symbol this node
	// starts to refresh, before its first fetch: alerts take their state
	// from it, so what the previous owner fired does not fire again. It must
	// not block. Default: none.
	OnTakeover func(quotehub.Quote)
	// DayClose, when set, answers a read that misses the cache while the
	// symbol's market is closed: the quote of the last stored daily close
	// (ok false: none stored). The read does not wait for the upstream; a
	// fetch fills the cache behind it. Default: none.
	DayClose func(ctx context.Context, symbol string) (q quotehub.Quote, ok bool)
	// Metrics default to unregistered collectors; Logger to disabled.
	Metrics *Metrics
	Logger  *zerolog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if o.Cache == nil || o.Bus == nil || o.Active == nil || o.Catalog == nil || len(o.Sources) == 0 {
		return errors.New("refresher: Cache, Bus, Active, Catalog and at least one Source are required")
	}
	dur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	dur(&o.Freshness, 5*time.Second)
	dur(&o.ActiveWindow, 5*time.Minute)
	dur(&o.Heartbeat, 30*time.Second)
	dur(&o.FetchTimeout, 2*time.Second)
	dur(&o.UpstreamTimeout, 5*time.Second)
	if o.Route == nil {
		first := o.Sources[0].Provider.Name()
		o.Route = func(quotehub.SymbolInfo) string { return first }
	}
	if o.Local == nil {
		o.Local = func() []string { return nil }
	}
	if o.Owns == nil {
		o.Owns = func(string) bool { return true }
	}
	if o.Degraded == nil {
		o.Degraded = func() bool { return false }
	}
	if o.OnRecover == nil {
		o.OnRecover = func() {}
	}
	if o.OnTakeover == nil {
		o.OnTakeover = func(quotehub.Quote) {}
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
	return nil
}

type source struct {
	Source
	sem      chan struct{}
	streamer quotehub.Streamer // nil unless Push and the provider streams
	seeder   quotehub.Seeder   // the provider (or the one it wraps) takes seeds; else nil
	followed string            // the symbol set last given to Follow, joined
}

// flight is one upstream fetch in progress for a symbol; readers that miss
// wait on it instead of fetching again.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// symState is what the refresher knows of one active symbol.
type symState struct {
	src       *source
	cal       *quotehub.Calendar
	nextDue   time.Time
	refreshed time.Time // last fetch or stream quote
	market    string    // market of the stored value; "" when the refresher stored none
	flight    *flight
	// owned is whether this node refreshed the symbol at the last scan that
	// looked at it; a scan that finds it owned when it was not is a
	// takeover (see takeOver).
	owned bool
}

// Refresher keeps active symbols fresh. Create it with New, start it with
// Run, and answer reads with Read.
type Refresher struct {
	opts    Options
	sources map[string]*source
	warn    zerolog.Logger // sampled, for per-fetch failures
	streams bool           // some source streams
	kick    chan struct{}
	rebuild chan struct{}  // the shared stores lost their state
	wg      sync.WaitGroup // fetch goroutines

	mu        sync.Mutex
	state     map[string]*symState
	active    []string
	activeSet map[string]struct{}  // the members of active
	lastRead  map[string]time.Time // local HTTP reads within the window
	touched   map[string]time.Time // when each read symbol was last touched

	// scanAt is the earliest moment refreshDue can find work: the loop
	// wakes every tick, but scans the active set only from then on.
	// Whatever makes a symbol due sooner lowers it (dueHintLocked); a scan
	// sets it to the earliest moment one of the symbols it looked at
	// becomes due, and at most scanCap ahead, so that what it cannot
	// foresee (a lease won, a market opening) waits no longer than that.
	scanAt  time.Time
	scanCap time.Duration

	touchMu sync.Mutex
	touches map[string]bool // symbols to touch at the next flush → wake
}

// New checks opts and returns a refresher that is not yet running.
func New(opts Options) (*Refresher, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r := &Refresher{
		opts: opts, sources: make(map[string]*source), kick: make(chan struct{}, 1), rebuild: make(chan struct{}, 1),
		state: make(map[string]*symState), lastRead: make(map[string]time.Time), touched: make(map[string]time.Time),
		touches: make(map[string]bool), activeSet: make(map[string]struct{}),
	}
	r.warn = opts.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	r.scanCap = time.Hour
	for _, s := range opts.Sources {
		if s.Interval <= 0 {
			s.Interval = time.Second
		}
		if s.Concurrency <= 0 {
			s.Concurrency = 4
		}
		name := s.Provider.Name()
		if _, dup := r.sources[name]; dup {
			return nil, fmt.Errorf("refresher: provider %q given twice", name)
		}
		if s.StreamSilence <= 0 {
			s.StreamSilence = 30 * time.Second
		}
		src := &source{Source: s, sem: make(chan struct{}, s.Concurrency), seeder: seederOf(s.Provider)}
		if st, ok := s.Provider.(quotehub.Streamer); ok && s.Push {
			src.streamer = st
			r.streams = true
		}
		r.sources[name] = src
		r.scanCap = min(r.scanCap, s.Interval/2)
	}
	return r, nil
}

// Activate marks a symbol as used now because it got its first local
// subscriber, and wakes the loop so its first quote comes at once. It never
// blocks: hub callbacks call it under the registry lock.
func (r *Refresher) Activate(symbol string) {
	r.touchAsync(symbol, true)
}

// Deactivate records the moment a symbol lost its last local subscriber:
// it stays active for the active window from now. The touch is written on
// the loop's next tick; nothing needs to happen sooner.
func (r *Refresher) Deactivate(symbol string) {
	r.touchAsync(symbol, false)
}

// touchAsync queues a touch of symbol for the loop, which writes all
// queued touches in one call; the caller (often under the hub's registry
// lock) never waits on the active set's store. With wake, the symbol is a
// new interest: the loop wakes and starts tracking it at once.
func (r *Refresher) touchAsync(symbol string, wake bool) {
	r.touchMu.Lock()
	r.touches[symbol] = r.touches[symbol] || wake
	r.touchMu.Unlock()
	if wake {
		r.Kick()
	}
}

// flushTouches writes the queued touches in one call and returns the ones
// queued with wake.
func (r *Refresher) flushTouches(ctx context.Context) []string {
	r.touchMu.Lock()
	if len(r.touches) == 0 {
		r.touchMu.Unlock()
		return nil
	}
	syms := make([]string, 0, len(r.touches))
	var woken []string
	for s, wake := range r.touches {
		syms = append(syms, s)
		if wake {
			woken = append(woken, s)
		}
	}
	clear(r.touches)
	r.touchMu.Unlock()
	if err := r.opts.Active.Touch(ctx, r.opts.Now(), syms...); err != nil {
		r.opts.Metrics.Errors.WithLabelValues("touch").Inc()
		r.warn.Warn().Err(err).Int("symbols", len(syms)).Msg("touching the active set failed")
	}
	return woken
}

// addActive starts tracking symbols that just became active here, without
// re-reading the whole active set (which a busy node would otherwise do
// for every new subscription).
func (r *Refresher) addActive(ctx context.Context, syms []string) {
	var added []string
	r.mu.Lock()
	for _, s := range syms {
		if _, ok := r.activeSet[s]; !ok {
			r.activeSet[s] = struct{}{}
			r.active = append(r.active, s)
			added = append(added, s)
		}
	}
	if len(added) > 0 {
		r.scanAt = time.Time{}
	}
	r.mu.Unlock()
	if len(added) == 0 {
		return
	}
	var fresh []string
	for _, s := range added {
		if _, created := r.ensureStateNew(ctx, s); created {
			fresh = append(fresh, s)
		}
	}
	r.primeFromCache(ctx, fresh)
	r.follow(r.activeSnapshot())
}

func (r *Refresher) activeSnapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.active...)
}

// seederOf finds the quotehub.Seeder behind p, looking through wrappers
// that expose the provider they wrap with Unwrap.
func seederOf(p quotehub.Provider) quotehub.Seeder {
	for range 8 { // wrappers do not nest deeper
		if s, ok := p.(quotehub.Seeder); ok {
			return s
		}
		u, ok := p.(interface{ Unwrap() quotehub.Provider })
		if !ok {
			return nil
		}
		p = u.Unwrap()
	}
	return nil
}

// Rescan makes the loop look at every active symbol now rather than at its
// next planned scan: the node's ownership changed (a lease won or lost), so
// a symbol may have to be refreshed here at once. It never blocks.
func (r *Refresher) Rescan() {
	r.mu.Lock()
	r.scanAt = time.Time{}
	r.mu.Unlock()
	r.Kick()
}

// Rebuild tells the refresher that the shared stores lost their state (an
// emptied Redis): the loop re-touches every local symbol and recent read
// at once instead of at the next heartbeat, re-reads the active set, and
// treats every symbol it refreshes from then on as taken over (seeding its
// provider from the cache). It never blocks.
func (r *Refresher) Rebuild() {
	select {
	case r.rebuild <- struct{}{}:
	default:
	}
}

// Tracked returns the symbols the refresher keeps state for: the active
// set as last read, plus recent local reads.
func (r *Refresher) Tracked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.state))
	for s := range r.state {
		out = append(out, s)
	}
	return out
}

// Kick wakes the loop to re-read the active set now.
func (r *Refresher) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run refreshes until ctx ends, then waits for fetches in flight.
func (r *Refresher) Run(ctx context.Context) {
	minInterval := time.Hour
	for _, s := range r.sources {
		minInterval = min(minInterval, s.Interval)
	}
	tick := min(max(minInterval/20, 5*time.Millisecond), 50*time.Millisecond)
	poll := min(max(minInterval/4, 20*time.Millisecond), time.Second)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	hb := time.NewTicker(r.opts.Heartbeat)
	defer hb.Stop()
	defer r.wg.Wait()
	for _, src := range r.sources {
		if src.streamer != nil {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				_ = src.streamer.Stream(ctx, func(qs []quotehub.Quote) { r.ingest(ctx, src, qs) })
			}()
		}
	}

	r.heartbeat(ctx, false)
	r.pollActive(ctx)
	lastPoll := r.opts.Now()
	degraded := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			r.heartbeat(ctx, false)
		case <-r.rebuild:
			// Everything this node had put in the shared stores is gone:
			// put its part of the active set back now, and take every
			// symbol it refreshes from here on as a takeover.
			r.heartbeat(ctx, true)
			r.forgetOwnership()
			r.pollActive(ctx)
			lastPoll = r.opts.Now()
		case <-r.kick:
			r.addActive(ctx, r.flushTouches(ctx))
		case <-ticker.C:
			r.addActive(ctx, r.flushTouches(ctx))
			if r.opts.Now().Sub(lastPoll) >= poll {
				r.pollActive(ctx)
				lastPoll = r.opts.Now()
			}
		}
		switch d := r.opts.Degraded(); {
		case d && !degraded:
			degraded = true
			r.opts.Logger.Warn().Msg("shared stores unreachable: refreshing the symbols local clients use")
		case !d && degraded:
			degraded = false
			// The shared stores are back (maybe empty, after a restart):
			// put this node's symbols back in the active set at once.
			r.heartbeat(ctx, true)
			r.forgetOwnership()
			r.pollActive(ctx)
			r.opts.OnRecover()
			r.opts.Logger.Info().Msg("shared stores reachable again")
		}
		r.refreshDue(ctx)
	}
}

// forgetOwnership marks every symbol as not refreshed here, so that the
// next scan treats the ones this node owns as taken over.
func (r *Refresher) forgetOwnership() {
	r.mu.Lock()
	for _, st := range r.state {
		st.owned = false
	}
	r.scanAt = time.Time{}
	r.mu.Unlock()
}

// heartbeat re-touches local symbols and recent local reads, and prunes the
// active set of symbols unused for the window. With all, every recent read
// is touched again, not only those read since their last touch.
func (r *Refresher) heartbeat(ctx context.Context, all bool) {
	now := r.opts.Now()
	local := r.opts.Local()
	if len(local) > 0 {
		if err := r.opts.Active.Touch(ctx, now, local...); err != nil {
			r.opts.Metrics.Errors.WithLabelValues("touch").Inc()
			r.warn.Warn().Err(err).Msg("heartbeat failed")
		}
	}
	cut := now.Add(-r.opts.ActiveWindow)
	r.mu.Lock()
	var reread []string
	for sym, t := range r.lastRead {
		switch {
		case t.Before(cut):
			delete(r.lastRead, sym)
			delete(r.touched, sym)
		case all || t.After(r.touched[sym]):
			reread = append(reread, sym)
			r.touched[sym] = now
		}
	}
	n := len(r.lastRead)
	r.mu.Unlock()
	// Symbols read since their last touch are touched now, in one call: a
	// read keeps its symbol active for the window, give or take a heartbeat.
	if len(reread) > 0 {
		if err := r.opts.Active.Touch(ctx, now, reread...); err != nil {
			r.opts.Metrics.Errors.WithLabelValues("touch").Inc()
		}
	}
	r.opts.Metrics.ActiveSymbols.WithLabelValues("local").Set(float64(len(local) + n))
	if err := r.opts.Active.Prune(ctx, cut); err != nil {
		r.opts.Metrics.Errors.WithLabelValues("prune").Inc()
	}
}

// pollActive re-reads the cluster's active set and forgets the state of
// symbols that left it, so cost follows the active set.
func (r *Refresher) pollActive(ctx context.Context) {
	active, err := r.opts.Active.Active(ctx, r.opts.Now().Add(-r.opts.ActiveWindow))
	if err != nil {
		r.opts.Metrics.Errors.WithLabelValues("active").Inc()
		r.warn.Warn().Err(err).Msg("reading the active set failed; keeping the last one")
		return
	}
	r.opts.Metrics.ActiveSymbols.WithLabelValues("cluster").Set(float64(len(active)))
	keep := make(map[string]struct{}, len(active))
	for _, s := range active {
		keep[s] = struct{}{}
	}
	r.mu.Lock()
	changed := len(active) != len(r.activeSet)
	for _, s := range active {
		if _, ok := r.activeSet[s]; !ok {
			changed = true
			break
		}
	}
	if changed { // a symbol that came back may be due with the state it kept
		r.scanAt = time.Time{}
	}
	r.active = active
	clear(r.activeSet)
	for _, s := range active {
		r.activeSet[s] = struct{}{}
	}
	for sym, st := range r.state {
		_, read := r.lastRead[sym]
		if _, ok := keep[sym]; !ok && !read && st.flight == nil {
			delete(r.state, sym)
		}
	}
	r.mu.Unlock()
	var fresh []string
	owned := 0
	for _, sym := range active {
		if _, created := r.ensureStateNew(ctx, sym); created {
			fresh = append(fresh, sym)
		}
		if r.opts.Owns(sym) {
			owned++
		}
	}
	r.opts.Metrics.Owned.Set(float64(owned))
	r.primeFromCache(ctx, fresh)
	r.follow(active)
}

// follow gives every streaming source the owned active symbols it serves,
// when that set changed.
func (r *Refresher) follow(active []string) {
	if !r.streams {
		return
	}
	degraded := r.opts.Degraded()
	if degraded {
		active = r.localInterest(context.Background())
	}
	per := map[*source][]string{}
	r.mu.Lock()
	for _, sym := range active {
		if st := r.state[sym]; st != nil && st.src.streamer != nil && (degraded || r.opts.Owns(sym)) {
			per[st.src] = append(per[st.src], sym)
		}
	}
	r.mu.Unlock()
	for _, src := range r.sources {
		if src.streamer == nil {
			continue
		}
		syms := per[src]
		sort.Strings(syms)
		if key := strings.Join(syms, ","); key != src.followed {
			src.followed = key
			src.streamer.Follow(syms)
		}
	}
}

// ingest writes quotes pushed by a stream through the same path as polled
// ones. Quotes of symbols this node does not (or no longer) refresh are
// dropped.
func (r *Refresher) ingest(ctx context.Context, src *source, quotes []quotehub.Quote) {
	degraded := r.opts.Degraded()
	wanted := func(sym string) bool {
		r.mu.Lock()
		st := r.state[sym]
		r.mu.Unlock()
		return st != nil && st.src == src && (degraded || r.opts.Owns(sym))
	}
	r.opts.Metrics.Streamed.WithLabelValues(src.Provider.Name()).Add(float64(len(quotes)))
	markets, err := r.write(context.WithoutCancel(ctx), src.Provider.Name(), quotes, wanted)
	if err != nil {
		return
	}
	now := r.opts.Now()
	r.mu.Lock()
	for sym, mk := range markets {
		if st := r.state[sym]; st != nil {
			st.market, st.refreshed, st.nextDue = mk, now, now.Add(src.Interval)
			r.dueHintLocked(st)
		}
	}
	r.mu.Unlock()
}

// primeFromCache schedules newly tracked symbols from what the cache holds:
// a symbol fetched recently (by another node, before this node owned it)
// is due one interval after that fetch, not at once, and a stored close of
// a closed market is not fetched again.
func (r *Refresher) primeFromCache(ctx context.Context, syms []string) {
	if len(syms) == 0 {
		return
	}
	qs, err := r.opts.Cache.GetMany(ctx, syms)
	if err != nil {
		r.opts.Metrics.Errors.WithLabelValues("cache_get").Inc()
		return
	}
	degraded := r.opts.Degraded()
	var seeds []seed
	var taken []quotehub.Quote
	r.mu.Lock()
	for i, q := range qs {
		st := r.state[syms[i]]
		if st == nil {
			continue
		}
		if !degraded && !st.owned && r.opts.Owns(syms[i]) {
			// Refreshed here from now on, and the cache was just read: this
			// is the takeover (see takeOver), done here rather than at the
			// next scan.
			st.owned = true
			if q.Symbol != "" {
				seeds = st.src.seedOf(seeds, q)
				taken = append(taken, q)
			}
		}
		if q.Symbol == "" || st.flight != nil || st.market != "" {
			continue
		}
		st.nextDue = time.UnixMilli(q.FetchedAt).Add(st.src.Interval)
		st.market = q.Market
		r.dueHintLocked(st)
	}
	r.mu.Unlock()
	plant(seeds)
	for _, q := range taken {
		r.opts.OnTakeover(q)
	}
}

// seed is a cached quote to hand to a provider's Seed.
type seed struct {
	to quotehub.Seeder
	q  quotehub.Quote
}

// seedOf appends q to seeds when the source's provider takes seeds and q
// came from it.
func (src *source) seedOf(seeds []seed, q quotehub.Quote) []seed {
	if src.seeder == nil || q.Source != src.Provider.Name() {
		return seeds
	}
	return append(seeds, seed{to: src.seeder, q: q})
}

func plant(seeds []seed) {
	for _, s := range seeds {
		s.to.Seed(s.q)
	}
}

// takeOver prepares symbols this node has just started to refresh (a lease
// won from a node that died, stopped or gave the slot away): it reads
// their cached quotes, seeds the provider with them so its values continue
// from the last one the cluster served, and schedules each from the
// cache's fetched_at, so a planned hand-over costs no extra fetch and a
// failover fetches at once.
func (r *Refresher) takeOver(ctx context.Context, syms []string) {
	qs, err := r.opts.Cache.GetMany(ctx, syms)
	if err != nil {
		r.opts.Metrics.Errors.WithLabelValues("cache_get").Inc()
		return
	}
	var seeds []seed
	var taken []quotehub.Quote
	r.mu.Lock()
	for i, q := range qs {
		st := r.state[syms[i]]
		if q.Symbol == "" || st == nil {
			continue
		}
		if st.flight == nil {
			st.nextDue = time.UnixMilli(q.FetchedAt).Add(st.src.Interval)
			st.market = q.Market
			r.dueHintLocked(st)
		}
		seeds = st.src.seedOf(seeds, q)
		taken = append(taken, q)
	}
	r.mu.Unlock()
	plant(seeds)
	for _, q := range taken {
		r.opts.OnTakeover(q)
	}
}

// ensureState creates the state of an active symbol, looking up its
// provider and calendar once. It returns nil for a symbol that has no
// provider (not in the catalogue, or routed to a provider not running).
func (r *Refresher) ensureState(ctx context.Context, sym string) *symState {
	st, _ := r.ensureStateNew(ctx, sym)
	return st
}

// ensureStateNew is ensureState that also says whether it created the state.
func (r *Refresher) ensureStateNew(ctx context.Context, sym string) (*symState, bool) {
	r.mu.Lock()
	st := r.state[sym]
	r.mu.Unlock()
	if st != nil {
		return st, false
	}
	info, ok, err := r.opts.Catalog.Lookup(ctx, sym)
	if err != nil || !ok {
		return nil, false
	}
	src := r.sources[r.opts.Route(info)]
	if src == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st = r.state[sym]; st != nil {
		return st, false
	}
	st = &symState{src: src, cal: quotehub.CalendarOf(info.Exchange)}
	r.state[sym] = st
	r.dueHintLocked(st) // due at once
	return st, true
}

// refreshDue starts fetches of the due active symbols, grouped per
// provider into batches, without waiting for them. A symbol is due when it
// has no stored value, when its market opened or closed since the stored
// value, or when its market is open and the last fetch is older than the
// provider's interval. A closed market's close is never re-polled.
//
// It walks in two steps: a scan that only classifies the symbols this node
// refreshes (dueScan, under r.mu, after reading the cache for the ones it
// has just taken over), then a dispatch that starts the fetches.
func (r *Refresher) refreshDue(ctx context.Context) {
	start := time.Now()
	now := r.opts.Now()
	candidates, owns := r.active, r.opts.Owns
	degraded := r.opts.Degraded()
	r.mu.Lock()
	if !degraded && now.Before(r.scanAt) {
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	if degraded { // what local clients use; scanned every tick while it lasts
		candidates, owns = r.localInterest(ctx), func(string) bool { return true }
	}
	scan := newDueScan(now, now.Add(r.scanCap), r.opts.FetchLock != nil)
	var taken []string
	r.mu.Lock()
	for _, sym := range candidates {
		st := r.state[sym]
		if !owns(sym) {
			if st != nil {
				st.owned = false
			}
			continue
		}
		if st == nil || st.flight != nil {
			continue // a flight's end lowers scanAt
		}
		if !st.owned {
			// Refreshed here from now on: as the owner, or while degraded
			// (a node whose lease rounds lag, say under load, refreshes what
			// its clients use). Either way the provider continues from the
			// cached quote, not from a walk of its own.
			st.owned = true
			taken = append(taken, sym)
			continue // considered once the cache was read, below
		}
		scan.consider(sym, st)
	}
	r.mu.Unlock()
	if len(taken) > 0 {
		r.takeOver(ctx, taken)
		r.mu.Lock()
		for _, sym := range taken {
			if st := r.state[sym]; st != nil && st.flight == nil {
				scan.consider(sym, st)
			}
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.scanAt = scan.next
	r.mu.Unlock()
	r.dispatch(ctx, scan)
	r.opts.Metrics.Walk.Observe(time.Since(start).Seconds())
}

// dueScan is one walk's classification of the symbols this node
// refreshes: due now, due within half an interval (soon: they join a batch
// that goes now), cold (never seen a value, in a cluster: see admitCold),
// and when the next walk is worth it. It only reads symbol state, under
// the refresher's lock, and starts nothing.
type dueScan struct {
	now     time.Time
	next    time.Time // the next walk
	cluster bool      // a fetch lock guards cold symbols
	due     map[*source][]string
	soon    map[*source][]string
	cold    []string
}

func newDueScan(now, next time.Time, cluster bool) *dueScan {
	return &dueScan{now: now, next: next, cluster: cluster, due: map[*source][]string{}, soon: map[*source][]string{}}
}

// consider files sym under due, soon or cold, or lowers next to when it
// will be. The caller holds the refresher's lock.
func (d *dueScan) consider(sym string, st *symState) {
	early := d.now.Before(st.nextDue)
	if early && d.now.Add(st.src.Interval/2).Before(st.nextDue) {
		d.next = earliest(d.next, st.nextDue.Add(-st.src.Interval/2))
		return
	}
	open := st.cal.IsOpen(d.now)
	if !open && st.market == quotehub.MarketClosed {
		return
	}
	if st.src.streamer != nil && st.src.streamer.Connected() && st.market != "" &&
		d.now.Sub(st.refreshed) < st.src.StreamSilence {
		d.next = earliest(d.next, st.refreshed.Add(st.src.StreamSilence))
		return // the stream keeps it fresh
	}
	if early {
		d.soon[st.src] = append(d.soon[st.src], sym)
		d.next = earliest(d.next, st.nextDue) // in case no batch goes now
		return
	}
	if st.market == "" && d.cluster {
		d.cold = append(d.cold, sym)
		return
	}
	d.due[st.src] = append(d.due[st.src], sym)
}

// dispatch starts the fetches of a scan: cold symbols admitted under the
// cluster's fetch lock, then every provider's due symbols in batches of its
// MaxBatch, at most its concurrency at once.
func (r *Refresher) dispatch(ctx context.Context, scan *dueScan) {
	due := scan.due
	r.admitCold(ctx, scan.cold, scan.now, due)
	// Symbols that became active at different moments would otherwise keep
	// their own phase and cost a request each per interval; pulling the
	// nearly due ones into a batch that goes anyway merges the phases.
	for src, syms := range scan.soon {
		if len(due[src]) > 0 {
			due[src] = append(due[src], syms...)
		}
	}
	for _, src := range r.sources {
		syms := due[src]
		batch := src.Provider.MaxBatch()
		if batch <= 0 {
			batch = 1
		}
		backlog := 0
		for len(syms) > 0 {
			n := min(batch, len(syms))
			select {
			case src.sem <- struct{}{}:
			default:
				backlog = len(syms)
				syms = nil // at the provider's concurrency: the rest wait for the next tick
				r.mu.Lock()
				r.scanAt = time.Time{}
				r.mu.Unlock()
				continue
			}
			r.startFetch(ctx, src, syms[:n], true, scan.now.Add(src.Interval/2))
			syms = syms[n:]
		}
		r.opts.Metrics.Backlog.WithLabelValues(src.Provider.Name()).Set(float64(backlog))
	}
}

// dueHintLocked lowers scanAt to when st enters the window in which
// refreshDue picks it up (half an interval before it is due). The caller
// holds r.mu.
func (r *Refresher) dueHintLocked(st *symState) {
	r.scanAt = earliest(r.scanAt, st.nextDue.Add(-st.src.Interval/2))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// admitCold decides, in a cluster, which symbols this node has never seen
// a value of may be fetched now: one whose value has meanwhile reached the
// cache (another node's read fetched it) is scheduled from it; one whose
// fetch lock another node holds is tried again shortly; the rest are
// fetched under the lock, so a cold symbol costs the upstream one fetch
// cluster-wide however it became active.
func (r *Refresher) admitCold(ctx context.Context, cold []string, now time.Time, due map[*source][]string) {
	if len(cold) == 0 {
		return
	}
	r.primeFromCache(ctx, cold)
	for _, sym := range cold {
		r.mu.Lock()
		st := r.state[sym]
		primed := st == nil || st.market != ""
		r.mu.Unlock()
		if primed {
			continue
		}
		ok, err := r.opts.FetchLock.TryLock(ctx, sym, r.opts.FetchTimeout)
		if err == nil && !ok {
			r.mu.Lock()
			st.nextDue = now.Add(min(st.src.Interval, 250*time.Millisecond))
			r.dueHintLocked(st)
			r.mu.Unlock()
			continue
		}
		due[st.src] = append(due[st.src], sym)
	}
}

// localInterest lists the symbols this node's own clients use: local
// subscriptions and reads within the window. Used while degraded.
func (r *Refresher) localInterest(ctx context.Context) []string {
	syms := r.opts.Local()
	r.mu.Lock()
	cut := r.opts.Now().Add(-r.opts.ActiveWindow)
	for sym, t := range r.lastRead {
		if t.After(cut) {
			syms = append(syms, sym)
		}
	}
	r.mu.Unlock()
	for _, sym := range syms {
		r.ensureState(ctx, sym)
	}
	return syms
}

// startFetch registers a flight for each symbol not already in flight and
// fetches them in one request, in the background. The caller holds one
// token of src.sem when acquired is true; it is released when done. With a
// non-zero dueAt (the loop), a symbol is skipped unless it is still due
// then: a read's fetch may have refreshed it since the loop looked.
func (r *Refresher) startFetch(ctx context.Context, src *source, syms []string, acquired bool, dueAt time.Time) map[string]*flight {
	flights := make(map[string]*flight, len(syms))
	batch := make([]string, 0, len(syms))
	r.mu.Lock()
	for _, sym := range syms {
		st := r.state[sym]
		if st == nil {
			continue
		}
		if st.flight != nil {
			flights[sym] = st.flight
			continue
		}
		if !dueAt.IsZero() && dueAt.Before(st.nextDue) {
			continue
		}
		f := &flight{done: make(chan struct{})}
		st.flight = f
		flights[sym] = f
		batch = append(batch, sym)
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		if acquired {
			<-src.sem
		}
		return flights
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if !acquired {
			src.sem <- struct{}{}
		}
		defer func() { <-src.sem }()
		r.fetch(context.WithoutCancel(ctx), src, batch, flights)
	}()
	return flights
}

// fetch asks the provider for syms, writes the results through to the cache
// and publishes the changed ones, then settles every symbol's flight.
func (r *Refresher) fetch(ctx context.Context, src *source, syms []string, flights map[string]*flight) {
	name := src.Provider.Name()
	m := r.opts.Metrics
	start := r.opts.Now()
	fctx, cancel := context.WithTimeout(ctx, r.opts.UpstreamTimeout)
	quotes, err := src.Provider.Fetch(fctx, syms)
	cancel()
	m.FetchDuration.WithLabelValues(name).Observe(r.opts.Now().Sub(start).Seconds())
	m.SymbolsFetched.WithLabelValues(name).Add(float64(len(syms)))
	outcome := "ok"
	var perSymbol quotehub.FetchErrors
	switch {
	case err == nil:
	case errors.As(err, &perSymbol) && len(quotes) > 0:
		// a partial failure: the good quotes stand
	case quotehub.ErrorCode(err) == quotehub.ERateLimited:
		outcome = "rate_limited"
	default:
		if !errors.As(err, &perSymbol) {
			outcome = "error"
		}
	}
	m.UpstreamRequests.WithLabelValues(name, outcome).Inc()
	if err != nil {
		r.warn.Warn().Err(err).Str("provider", name).Int("symbols", len(syms)).Msg("upstream fetch failed")
	}

	markets, werr := r.write(ctx, name, quotes, func(sym string) bool { _, asked := flights[sym]; return asked })
	if werr != nil {
		err = werr
	}

	next := start.Add(src.Interval)
	r.mu.Lock()
	for _, sym := range syms {
		f := flights[sym]
		if st := r.state[sym]; st != nil && st.flight == f {
			st.flight = nil
			st.nextDue = next
			if mk, ok := markets[sym]; ok {
				st.market, st.refreshed = mk, start
			}
			r.dueHintLocked(st)
		}
		if _, ok := markets[sym]; !ok {
			f.err = symbolError(sym, err, perSymbol)
		}
	}
	r.mu.Unlock()
	for _, sym := range syms {
		close(flights[sym].done)
	}
}

// write validates quotes from provider name, gives each its seq (the same
// one for an unchanged value, the next one for a change), writes them to
// the cache in one PutMany and publishes the changed ones. Quotes for
// symbols not wanted, second quotes of a symbol and malformed quotes are
// dropped. It returns the market state of every symbol it stored; an error
// means nothing was stored.
func (r *Refresher) write(ctx context.Context, name string, quotes []quotehub.Quote, wanted func(string) bool) (map[string]string, error) {
	m := r.opts.Metrics
	seen := make(map[string]bool, len(quotes))
	puts := make([]quotehub.Quote, 0, len(quotes))
	syms := make([]string, 0, len(quotes))
	for i := range quotes {
		q := quotes[i]
		if !wanted(q.Symbol) || seen[q.Symbol] {
			continue // a provider must not answer what was not asked, nor twice
		}
		if verr := q.Validate(); verr != nil {
			m.Rejected.WithLabelValues(name).Inc()
			r.warn.Warn().Err(verr).Str("provider", name).Msg("dropping malformed quote")
			continue
		}
		seen[q.Symbol] = true
		puts = append(puts, q)
		syms = append(syms, q.Symbol)
	}
	markets := make(map[string]string, len(puts))
	if len(puts) == 0 {
		return markets, nil
	}
	prev, err := r.opts.Cache.GetMany(ctx, syms)
	if err != nil {
		m.Errors.WithLabelValues("cache_get").Inc()
		prev = make([]quotehub.Quote, len(syms)) // write as new; the cache's fence decides
	}
	fetchedAt := r.opts.Now().UnixMilli()
	for i := range puts {
		q, p := &puts[i], &prev[i]
		q.FetchedAt = fetchedAt
		switch {
		case p.Symbol == "":
			q.Seq = quotehub.NextSeq(0, fetchedAt)
		case p.SameValue(q):
			q.Seq = p.Seq // confirmed: only fetched_at moves
		default:
			q.Seq = quotehub.NextSeq(p.Seq, fetchedAt)
		}
	}
	written, err := r.opts.Cache.PutMany(ctx, puts)
	if err != nil {
		m.Errors.WithLabelValues("cache_put").Inc()
		r.warn.Warn().Err(err).Str("provider", name).Msg("cache write failed")
		return markets, fmt.Errorf("cache write: %w", err)
	}
	var changed []quotehub.Quote
	for i, q := range puts {
		markets[q.Symbol] = q.Market
		if written[i] && (prev[i].Symbol == "" || q.Seq > prev[i].Seq) {
			changed = append(changed, q)
		}
	}
	if len(changed) > 0 {
		if err := r.opts.Bus.Publish(ctx, changed); err != nil {
			m.Errors.WithLabelValues("publish").Inc()
			r.warn.Warn().Err(err).Msg("publish failed")
		}
		m.Published.Add(float64(len(changed)))
		if r.opts.OnChanged != nil {
			if owned := r.owned(changed); len(owned) > 0 {
				r.opts.OnChanged(owned)
			}
		}
	}
	return markets, nil
}

// owned returns the quotes of qs whose symbols this node owns: qs itself
// when it owns them all (the common case), else a copy.
func (r *Refresher) owned(qs []quotehub.Quote) []quotehub.Quote {
	for i, q := range qs {
		if !r.opts.Owns(q.Symbol) {
			out := slices.Clone(qs[:i])
			for _, q := range qs[i+1:] {
				if r.opts.Owns(q.Symbol) {
					out = append(out, q)
				}
			}
			return out
		}
	}
	return qs
}

// symbolError is why sym got no quote from a fetch.
func symbolError(sym string, err error, perSymbol quotehub.FetchErrors) error {
	if e, ok := perSymbol[sym]; ok {
		return e
	}
	if err == nil {
		return quotehub.Errorf(quotehub.EUpstreamUnavailable, "the upstream returned no valid quote for %s", sym)
	}
	return err
}
