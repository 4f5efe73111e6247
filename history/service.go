package history

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"quotehub"
)

// Options configure a Service. Catalog, Sources and Cache are required.
type Options struct {
	// Catalog says which symbols exist and on which exchange (calendar).
	Catalog quotehub.Catalog
	// Sources returns the candle source of a symbol, or nil when its
	// upstream has no candles.
	Sources func(info quotehub.SymbolInfo) quotehub.CandleSource
	// Cache holds chunks of closed candles.
	Cache quotehub.CandleCache
	// Store keeps closed candles durably; nil keeps them only in the cache.
	Store quotehub.CandleStore
	// Lock, when set, makes a chunk's backfill single-flight across the
	// cluster: a node that does not get the chunk's lock waits up to
	// LockWait for the holder to fill the cache, then fetches itself.
	Lock quotehub.FetchLock
	// LockWait: default 3 s.
	LockWait time.Duration
	// Live, when set, returns the open candle a node is folding from live
	// quotes (Live.Current). The open candle of a read is then the
	// upstream's view of the period, fetched once per period, merged with
	// the live one: the upstream's open, the extremes of both, the live
	// close, the larger volume.
	Live func(s quotehub.CandleSeries) (quotehub.Candle, bool)
	// OnOpen, when set, is called after the upstream's view of a series'
	// open period changed (fetched again, or brought along by a backfill),
	// so that what streams the open candle computes it again: Current
	// answers differently from then on even if no quote comes. It must be
	// quick and must not call back into the Service.
	OnOpen func(s quotehub.CandleSeries)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Keep is how long a final chunk stays cached; default 30 days.
	Keep time.Duration
	// Grace is added to the expiry of the current chunk, so the upstream
	// has the candle that just closed when the chunk is read again;
	// default 2 s.
	Grace time.Duration
	// OpenTTL is how long an open candle fetched from the upstream is
	// reused by other reads; default 1 s.
	OpenTTL time.Duration
	// FetchTimeout bounds one chunk's backfill; default 10 s.
	FetchTimeout time.Duration
	// ResponseTTL is how long the encoded chart of a closed range is
	// served again (ChartJSON); default 10 min. ResponseBytes bounds
	// those kept; default 64 MiB.
	ResponseTTL   time.Duration
	ResponseBytes int
}

// Service reads candles: from the cache, else from the store, else once
// per chunk from the upstream, which then fills both.
type Service struct {
	o  Options
	sf singleflight.Group

	mu   sync.Mutex
	open map[quotehub.CandleSeries]openMemo
	prev map[quotehub.CandleSeries]openMemo // the one open replaced, of the period before

	resp responses
}

type openMemo struct {
	c    quotehub.Candle
	ok   bool
	good time.Time // reusable until
}

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Keep <= 0 {
		o.Keep = 30 * 24 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.OpenTTL <= 0 {
		o.OpenTTL = time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.LockWait <= 0 {
		o.LockWait = 3 * time.Second
	}
	if o.ResponseTTL <= 0 {
		o.ResponseTTL = 10 * time.Minute
	}
	if o.ResponseBytes <= 0 {
		o.ResponseBytes = 64 << 20
	}
	return &Service{o: o, open: make(map[quotehub.CandleSeries]openMemo), prev: make(map[quotehub.CandleSeries]openMemo),
		resp: responses{ttl: o.ResponseTTL, max: o.ResponseBytes, m: make(map[string]response)}}
}

// Request asks for candles of one symbol; see quotehub.CandleQuery.
type Request = quotehub.CandleQuery

// Read returns the candles of r, oldest first; the newest may be open
// (Closed false). Errors are *quotehub.Error values: unknown_symbol,
// not_found (the symbol's upstream has no candles), bad_request (a range
// before the listing), upstream_unavailable.
func (s *Service) Read(ctx context.Context, r Request) ([]quotehub.Candle, error) {
	now := s.o.Now()
	if err := r.Check(now); err != nil {
		return nil, err
	}
	info, ok, err := s.o.Catalog.Lookup(ctx, r.Symbol)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, quotehub.Errorf(quotehub.EUnknownSymbol, "unknown symbol %s", r.Symbol)
	}
	src := s.o.Sources(info)
	if src == nil {
		return nil, quotehub.Errorf(quotehub.ENotFound, "no candles for %s: its upstream has none", r.Symbol)
	}
	count := r.Count
	if count == 0 {
		count = quotehub.DefaultCandles
	}
	to := r.To
	if to.IsZero() || to.After(now) {
		to = now
	}
	from := r.From
	if ls, ok := src.(quotehub.ListingSource); ok {
		listed, known, err := ls.Listed(ctx, r.Symbol)
		if err != nil {
			return nil, upstreamErr(r.Symbol, err)
		}
		if known && to.Before(listed) {
			return nil, quotehub.Errorf(quotehub.EBadRequest, "%s was listed at %d; the range ends before", r.Symbol, listed.UnixMilli())
		}
		if known && from.Before(listed) {
			from = listed
		}
	}
	cal := quotehub.CalendarOf(info.Exchange)
	series := quotehub.CandleSeries{Symbol: r.Symbol, Interval: r.Interval}
	rd := reader{s: s, cal: cal, src: src, series: series, now: now, from: from, to: to, count: count}
	return rd.read(ctx)
}

func upstreamErr(sym string, err error) error {
	if quotehub.ErrorCode(err) != quotehub.EInternal {
		return err
	}
	return fmt.Errorf("%w: %w", quotehub.Errorf(quotehub.EUpstreamUnavailable, "candles of %s: the upstream failed; retry later", sym), err)
}

// reader is one read: it walks chunks back from the newest until it has
// count candles or reaches from.
type reader struct {
	s        *Service
	cal      *quotehub.Calendar
	src      quotehub.CandleSource
	series   quotehub.CandleSeries
	now      time.Time
	from, to time.Time
	count    int
}

// batchChunks is how many chunks one cache round trip asks for.
const batchChunks = 8

// emptyRun is how many loaded chunks in a row without a candle end the
// walk back when the source does not know the listing.
const emptyRun = 3

// maxChunks bounds one read's walk.
const maxChunks = 2000

func (rd *reader) read(ctx context.Context) ([]quotehub.Candle, error) {
	iv := rd.series.Interval
	newest, ok := rd.cal.Floor(rd.to, iv)
	if !ok {
		return nil, nil
	}
	var parts [][]quotehub.Candle // newest chunk first
	n, empties, steps := 0, 0, 0
	c := chunkAt(rd.cal, rd.series, newest.Start)
	// The first batch is the newest chunk alone; later ones are sized by
	// the candles the last full chunk had, so a read asks for about the
	// chunks it needs, in few round trips.
	size, perChunk := 1, 0
	for n < rd.count && empties < emptyRun && steps < maxChunks && c.span.End.After(rd.from) {
		if perChunk > 0 {
			size = min(batchChunks, (rd.count-n+perChunk-1)/perChunk)
		}
		var batch []chunk
		for len(batch) < size && steps < maxChunks && c.span.End.After(rd.from) {
			if _, ok := c.last(rd.cal, iv); ok {
				batch = append(batch, c)
			}
			c = c.prev(rd.cal, rd.series)
			steps++
		}
		if len(batch) == 0 {
			break
		}
		got, err := rd.chunks(ctx, batch)
		if err != nil {
			return nil, err
		}
		for i, cs := range got {
			if len(cs) == 0 {
				empties++
			} else {
				empties = 0
			}
			kept := rd.keep(cs)
			parts = append(parts, kept)
			n += len(kept)
			perChunk = max(perChunk, rd.fullChunk(batch[i], len(cs)))
		}
		if perChunk == 0 {
			size = min(batchChunks, size*2)
		}
	}
	out := make([]quotehub.Candle, 0, min(n, rd.count)+1)
	if skip := n - rd.count; skip > 0 {
		// The oldest chunk holds more than the count needs: drop its oldest.
		last := len(parts) - 1
		parts[last] = parts[last][min(skip, len(parts[last])):]
	}
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	if open, ok := rd.openCandle(ctx); ok && (len(out) == 0 || out[len(out)-1].T < open.T) {
		out = append(out, open)
	}
	if len(out) > rd.count {
		out = out[len(out)-rd.count:]
	}
	return out, nil
}

// fullChunk estimates how many candles chunk c holds when whole from the n
// it holds now: a chunk still in progress is scaled by the part of its
// span that has passed.
func (rd *reader) fullChunk(c chunk, n int) int {
	if !rd.now.Before(c.span.End) {
		return n
	}
	passed := rd.now.Sub(c.span.Start)
	if passed <= 0 {
		return n
	}
	return int(float64(n) * float64(c.span.End.Sub(c.span.Start)) / float64(passed))
}

// keep returns the part of a chunk's candles (sorted by start) whose start
// is in [from, to], without copying: chunks may be shared by the readers of
// one flight, so they are never changed.
func (rd *reader) keep(cs []quotehub.Candle) []quotehub.Candle {
	lo := 0
	if !rd.from.IsZero() {
		ms := rd.from.UnixMilli()
		lo = sort.Search(len(cs), func(i int) bool { return cs[i].T >= ms })
	}
	ms := rd.to.UnixMilli()
	hi := sort.Search(len(cs), func(i int) bool { return cs[i].T > ms })
	if hi < lo {
		hi = lo
	}
	return cs[lo:hi]
}

// chunks returns the closed candles of each chunk of batch: cached, else
// loaded (misses load in parallel; the upstream adapters pace themselves).
func (rd *reader) chunks(ctx context.Context, batch []chunk) ([][]quotehub.Candle, error) {
	keys := make([]string, len(batch))
	for i, c := range batch {
		keys[i] = c.key
	}
	got, ok, err := rd.s.o.Cache.GetChunks(ctx, keys)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i := range batch {
		if ok[i] {
			continue
		}
		wg.Go(func() { got[i], errs[i] = rd.load(ctx, batch[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return got, nil
}

// load fills one chunk once: one flight per chunk in this process, and
// with a Lock one per chunk in the cluster.
func (rd *reader) load(ctx context.Context, c chunk) ([]quotehub.Candle, error) {
	v, err, _ := rd.s.sf.Do(c.key, func() (any, error) {
		// The flight outlives the reader that started it: others share it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rd.s.o.FetchTimeout)
		defer cancel()
		return rd.fill(fctx, c)
	})
	if err != nil {
		return nil, err
	}
	return v.([]quotehub.Candle), nil
}

func (rd *reader) fill(ctx context.Context, c chunk) ([]quotehub.Candle, error) {
	s, iv := rd.s, rd.series.Interval
	// A flight that ended just before this one began has filled the cache.
	if cs, ok, err := s.o.Cache.GetChunks(ctx, []string{c.key}); err == nil && ok[0] {
		return cs[0], nil
	}
	if s.o.Lock != nil {
		if cs, ok, err := rd.awaitHolder(ctx, c); err != nil || ok {
			return cs, err
		}
	}
	last, _ := c.last(rd.cal, iv)
	final := !rd.now.Before(last.End)
	var stored []quotehub.Candle
	if s.o.Store != nil {
		// The store holds whole chunks from backfills but also single
		// candles that nodes closed live, so the stored candles answer
		// alone only when there is one for every period of a final chunk;
		// else the upstream fills the chunk, and a stored candle, being
		// immutable, wins over the upstream's of its period.
		// A database that fails is passed by: the upstream answers.
		stored, _ = s.o.Store.Candles(ctx, rd.series, c.span.Start, c.span.End)
		if final && len(stored) > 0 && len(stored) == c.periods(rd.cal, iv) {
			return stored, rd.put(ctx, c, stored)
		}
	}
	raw, err := rd.src.Candles(ctx, rd.series, rd.cal, c.span.Start, c.span.End)
	if err != nil {
		return nil, upstreamErr(rd.series.Symbol, err)
	}
	closed := make([]quotehub.Candle, 0, len(raw))
	for _, x := range raw {
		p, ok := rd.cal.Period(time.UnixMilli(x.T), iv)
		if !ok || p.Start.Before(c.span.Start) || !p.Start.Before(c.span.End) {
			continue // not a period of this chunk on the market's calendar
		}
		x.T = p.Start.UnixMilli()
		if rd.now.Before(p.End) {
			good := rd.now.Add(s.o.OpenTTL)
			if s.o.Live != nil {
				good = p.End // the live candle keeps it current
			}
			s.memoOpen(rd.series, x, good)
			continue
		}
		x.Closed = true
		if n := len(closed); n > 0 && closed[n-1].T >= x.T {
			continue // out of order or repeated
		}
		closed = append(closed, x)
	}
	if s.o.Store != nil && len(closed) > 0 {
		// A failed write loses nothing but the database's copy: a later
		// cold read fetches the chunk again.
		_ = s.o.Store.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: rd.series, Candles: closed}})
		closed = overlay(closed, stored)
	}
	return closed, rd.put(ctx, c, closed)
}

// overlay returns the union of the sorted candles up and stored, a stored
// candle replacing the upstream's of its period.
func overlay(up, stored []quotehub.Candle) []quotehub.Candle {
	if len(stored) == 0 {
		return up
	}
	out := make([]quotehub.Candle, 0, len(up)+len(stored))
	i, j := 0, 0
	for i < len(up) || j < len(stored) {
		switch {
		case j == len(stored) || i < len(up) && up[i].T < stored[j].T:
			out = append(out, up[i])
			i++
		case i == len(up) || stored[j].T < up[i].T:
			out = append(out, stored[j])
			j++
		default:
			out = append(out, stored[j])
			i, j = i+1, j+1
		}
	}
	return out
}

func (rd *reader) put(ctx context.Context, c chunk, cs []quotehub.Candle) error {
	exp, _ := c.expiry(rd.cal, rd.series.Interval, rd.now, rd.s.o.Keep, rd.s.o.Grace)
	return rd.s.o.Cache.PutChunk(ctx, c.key, cs, exp)
}

// awaitHolder takes the chunk's cluster lock; when another node holds it,
// it waits for that node to fill the cache. ok is true with the chunk when
// it appeared; false means: fetch it here.
func (rd *reader) awaitHolder(ctx context.Context, c chunk) ([]quotehub.Candle, bool, error) {
	s := rd.s
	// The current chunk is filled again after each close; each filling
	// has its own lock (named by when the fill expires), so a fill never
	// waits on the lock a previous one left to expire.
	key := c.key
	if exp, final := c.expiry(rd.cal, rd.series.Interval, rd.now, s.o.Keep, s.o.Grace); !final {
		key += "@" + strconv.FormatInt(exp.UnixMilli(), 10)
	}
	got, err := s.o.Lock.TryLock(ctx, key, s.o.FetchTimeout)
	if err != nil || got {
		return nil, false, nil // no lock service: fetch here rather than fail
	}
	deadline := time.NewTimer(s.o.LockWait)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		cs, ok, err := s.o.Cache.GetChunks(ctx, []string{c.key})
		if err == nil && ok[0] {
			return cs[0], true, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-deadline.C:
			return nil, false, nil
		case <-tick.C:
		}
	}
}

// openCandle returns the candle of the period open at now: the live one
// when this node folds it, else the upstream's, reused for OpenTTL.
func (rd *reader) openCandle(ctx context.Context) (quotehub.Candle, bool) {
	c, _, ok := rd.openPeriod(ctx)
	return c, ok
}

// openPeriod is openCandle with the period of the candle.
func (rd *reader) openPeriod(ctx context.Context) (quotehub.Candle, quotehub.Period, bool) {
	s := rd.s
	p, ok := rd.cal.Period(rd.now, rd.series.Interval)
	if !ok || p.Start.After(rd.to) || p.Start.Before(rd.from) {
		return quotehub.Candle{}, p, false
	}
	live, hasLive := quotehub.Candle{}, false
	if s.o.Live != nil {
		live, hasLive = s.o.Live(rd.series)
		hasLive = hasLive && live.T == p.Start.UnixMilli()
	}
	up, ok := rd.upstreamOpen(ctx, p, hasLive)
	c, ok := mergeOpen(up, ok, live, hasLive)
	return c, p, ok
}

// mergeOpen merges the upstream's view of a period (up, when upOK) with
// the candle this node folded from live quotes (live, when liveOK): the
// upstream's open (it saw the period from its start), the extremes of
// both, the live close, the larger volume.
func mergeOpen(up quotehub.Candle, upOK bool, live quotehub.Candle, liveOK bool) (quotehub.Candle, bool) {
	switch {
	case liveOK && upOK:
		up.High, up.Low, up.Close, up.V = max(up.High, live.High), min(up.Low, live.Low), live.Close, max(up.V, live.V)
		return up, true
	case liveOK:
		return live, true
	}
	return up, upOK
}

// Current returns the candle of series open now, exactly as a read
// returns its newest candle (the live candle merged with the upstream's
// view of the period), and that period; ok is false when no period is
// open now. Errors are those of Read for the symbol.
func (s *Service) Current(ctx context.Context, series quotehub.CandleSeries) (c quotehub.Candle, p quotehub.Period, ok bool, err error) {
	rd, err := s.liveReader(ctx, series)
	if err != nil {
		return c, p, false, err
	}
	c, p, ok = rd.openPeriod(ctx)
	return c, p, ok, nil
}

// Final returns the final form of live, a candle this node folded from
// live quotes whose period has ended: merged with the upstream's view of
// that period, as Current merged it while it was open, and closed.
func (s *Service) Final(series quotehub.CandleSeries, live quotehub.Candle) quotehub.Candle {
	s.mu.Lock()
	m, hit := s.open[series]
	if !hit || !m.ok || m.c.T != live.T {
		m, hit = s.prev[series]
	}
	s.mu.Unlock()
	c, _ := mergeOpen(m.c, hit && m.ok && m.c.T == live.T, live, true)
	c.Closed = true
	return c
}

// Check reports whether the symbol has candles: nil, or the error a read
// of its candles gets (unknown_symbol, not_found).
func (s *Service) Check(ctx context.Context, symbol string) error {
	_, err := s.liveReader(ctx, quotehub.CandleSeries{Symbol: symbol, Interval: quotehub.Day1})
	return err
}

// liveReader is a reader of series' open candle at now.
func (s *Service) liveReader(ctx context.Context, series quotehub.CandleSeries) (*reader, error) {
	if !series.Interval.Valid() {
		return nil, quotehub.Errorf(quotehub.EBadRequest, "unknown interval")
	}
	info, ok, err := s.o.Catalog.Lookup(ctx, series.Symbol)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, quotehub.Errorf(quotehub.EUnknownSymbol, "unknown symbol %s", series.Symbol)
	}
	src := s.o.Sources(info)
	if src == nil {
		return nil, quotehub.Errorf(quotehub.ENotFound, "no candles for %s: its upstream has none", series.Symbol)
	}
	now := s.o.Now()
	return &reader{s: s, cal: quotehub.CalendarOf(info.Exchange), src: src, series: series, now: now, to: now}, nil
}

// upstreamOpen returns the upstream's candle of the open period p, reused
// for OpenTTL, or for the whole period when a live candle keeps it current.
func (rd *reader) upstreamOpen(ctx context.Context, p quotehub.Period, live bool) (quotehub.Candle, bool) {
	s := rd.s
	memo := func() (openMemo, bool) {
		s.mu.Lock()
		m, hit := s.open[rd.series]
		s.mu.Unlock()
		return m, hit && rd.now.Before(m.good) && (!m.ok || m.c.T == p.Start.UnixMilli())
	}
	if m, ok := memo(); ok {
		return m.c, m.ok
	}
	v, _, _ := s.sf.Do("open:"+rd.series.String(), func() (any, error) {
		if m, ok := memo(); ok {
			return m, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.FetchTimeout)
		defer cancel()
		cs, err := rd.src.Candles(fctx, rd.series, rd.cal, p.Start, p.End)
		if err != nil {
			return openMemo{}, nil // the closed candles still answer
		}
		m := openMemo{good: rd.now.Add(s.o.OpenTTL)}
		if live {
			m.good = p.End
		}
		for _, c := range cs {
			if c.T == p.Start.UnixMilli() {
				m.c, m.ok = c, true
				m.c.Closed = false
			}
		}
		s.keepOpen(rd.series, m)
		return m, nil
	})
	m := v.(openMemo)
	return m.c, m.ok
}

// memoOpen keeps an open candle a backfill brought along, until good.
func (s *Service) memoOpen(series quotehub.CandleSeries, c quotehub.Candle, good time.Time) {
	c.Closed = false
	s.keepOpen(series, openMemo{c: c, ok: true, good: good})
}

// keepOpen memoises the upstream's open candle of series; the one it
// replaces, of an earlier period, is kept as prev for Final.
func (s *Service) keepOpen(series quotehub.CandleSeries, m openMemo) {
	s.mu.Lock()
	if old, ok := s.open[series]; ok && old.ok && (!m.ok || old.c.T < m.c.T) {
		s.prev[series] = old
	}
	s.open[series] = m
	s.mu.Unlock()
	if s.o.OnOpen != nil {
		s.o.OnOpen(series)
	}
}

// Averages returns, for each n, the SMA (ema false) or EMA (ema true) of
// the closes of cs aligned to cs: vals[i][j] is the average of ns[i] at
// cs[j], and ok[i][j] is false where fewer than ns[i] candles lead to it. Each update is
// O(1) (see SMA, EMA); warm holds the candles before cs that seed them.
func Averages(warm, cs []quotehub.Candle, ns []int, ema bool) (vals [][]float64, ok [][]bool) {
	vals, ok = make([][]float64, len(ns)), make([][]bool, len(ns))
	for i, n := range ns {
		add := NewSMA(n).Add
		if ema {
			add = NewEMA(n).Add
		}
		for _, c := range warm {
			add(c.Close)
		}
		vals[i], ok[i] = make([]float64, len(cs)), make([]bool, len(cs))
		for j, c := range cs {
			vals[i][j], ok[i][j] = add(c.Close)
		}
	}
	return vals, ok
}

// Warmup is how many candles before the first returned one the averages of
// ns need: n−1 for an SMA; for an EMA, which depends on all it has seen,
// 4n, after which its seed weighs (1−2/(n+1))^4n ≈ e^−8 of the value
// (about 0.03 %), so reads of different windows agree to that.
func Warmup(ns []int, ema bool) int {
	w := 0
	for _, n := range ns {
		if ema {
			w = max(w, 4*n)
		} else {
			w = max(w, n-1)
		}
	}
	return w
}

// Chart answers q: its candles and, when asked, their moving averages. The
// averages of the first candles are seeded from the candles before them
// (Warmup), read through the same cache.
func (s *Service) Chart(ctx context.Context, q quotehub.CandleQuery) (quotehub.CandleChart, error) {
	ch := quotehub.CandleChart{Symbol: q.Symbol, Interval: q.Interval}
	cs, err := s.Read(ctx, q)
	if err != nil {
		return ch, err
	}
	ch.Candles = cs
	if len(q.MA) == 0 && len(q.EMA) == 0 {
		return ch, nil
	}
	var warm []quotehub.Candle
	if n := max(Warmup(q.MA, false), Warmup(q.EMA, true)); n > 0 && len(cs) > 0 {
		w, err := s.Read(ctx, quotehub.CandleQuery{Symbol: q.Symbol, Interval: q.Interval,
			To: time.UnixMilli(cs[0].T - 1), Count: min(n, quotehub.MaxCandles)})
		switch {
		case quotehub.ErrorCode(err) == quotehub.EBadRequest: // nothing before the listing
		case err != nil:
			return ch, err
		default:
			warm = w
		}
	}
	for _, set := range []struct {
		ns  []int
		ema bool
		out *[]quotehub.Average
	}{{q.MA, false, &ch.MA}, {q.EMA, true, &ch.EMA}} {
		for _, n := range set.ns {
			// Each average gets only its own warm-up, so its values do not
			// depend on which other averages a query asks for.
			w := warm[len(warm)-min(len(warm), Warmup([]int{n}, set.ema)):]
			vals, ok := Averages(w, cs, []int{n}, set.ema)
			*set.out = append(*set.out, quotehub.Average{N: n, Values: vals[0], OK: ok[0]})
		}
	}
	return ch, nil
}
