package refresher

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/memory"
)

// seedingProvider records the seeds it is given and counts fetches.
type seedingProvider struct {
	countingProvider
	smu   sync.Mutex
	seeds []quotehub.Quote
}

func (p *seedingProvider) Seed(q quotehub.Quote) {
	p.smu.Lock()
	defer p.smu.Unlock()
	p.seeds = append(p.seeds, q)
}

func (p *seedingProvider) seeded() []quotehub.Quote {
	p.smu.Lock()
	defer p.smu.Unlock()
	return append([]quotehub.Quote(nil), p.seeds...)
}

// wrapper stands for resilient.Provider: a provider around another one,
// which it exposes with Unwrap.
type wrapper struct{ inner quotehub.Provider }

func (w wrapper) Name() string              { return w.inner.Name() }
func (w wrapper) MaxBatch() int             { return w.inner.MaxBatch() }
func (w wrapper) Unwrap() quotehub.Provider { return w.inner }
func (w wrapper) Fetch(ctx context.Context, s []string) ([]quotehub.Quote, error) {
	return w.inner.Fetch(ctx, s)
}

// TestTakeOverSeedsAndSchedulesFromTheCache: when this node starts to
// refresh a symbol (a lease won), the provider behind the wrapper is
// seeded with the cached quote before the first fetch, and the symbol is
// scheduled from the cache's fetched_at: a planned hand-over fetches on
// the old phase, a failover fetches at once. Losing the symbol and winning
// it again, or a rebuild of the shared stores, seeds again.
func TestTakeOverSeedsAndSchedulesFromTheCache(t *testing.T) {
	const interval = time.Second
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	var owned atomic.Bool
	p := &seedingProvider{countingProvider: countingProvider{syms: map[string]int{}}}
	cache := memory.NewCache()
	const sym = "KRW-BTC"
	catalog := []quotehub.SymbolInfo{{Symbol: sym, Exchange: quotehub.ExchangeUpbit, Currency: "KRW"}}
	var hmu sync.Mutex
	var taken, changed []quotehub.Quote // what the alert hooks were given
	hooked := func() (t, c []quotehub.Quote) {
		hmu.Lock()
		defer hmu.Unlock()
		return slices.Clone(taken), slices.Clone(changed)
	}
	r, err := New(Options{
		Cache: cache, Bus: memory.NewBus(), Active: memory.NewActiveSet(), Catalog: memory.NewCatalog(catalog),
		Sources: []Source{{Provider: wrapper{p}, Interval: interval}}, Metrics: NewMetrics(nil), Now: now,
		Owns: func(string) bool { return owned.Load() },
		OnTakeover: func(q quotehub.Quote) {
			hmu.Lock()
			defer hmu.Unlock()
			taken = append(taken, q)
		},
		OnChanged: func(qs []quotehub.Quote) {
			hmu.Lock()
			defer hmu.Unlock()
			changed = append(changed, qs...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(price float64, age time.Duration) quotehub.Quote {
		q := quotehub.Quote{Symbol: sym, Price: price, Currency: "KRW", TradeTime: now().UnixMilli(), Source: "counting",
			Market: quotehub.MarketOpen, Seq: uint64(now().UnixMilli()), FetchedAt: now().Add(-age).UnixMilli()}
		if _, err := cache.Put(ctx, q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	step := func(d time.Duration) int {
		advance(d)
		r.refreshDue(ctx)
		r.wg.Wait()
		_, per := p.fetched()
		return per[sym]
	}

	// Another node refreshes it: tracked here, neither seeded nor fetched.
	put(100, 200*time.Millisecond)
	r.addActive(ctx, []string{sym})
	if n := step(0); n != 0 || len(p.seeded()) != 0 {
		t.Fatalf("not owned: %d fetches, %d seeds", n, len(p.seeded()))
	}

	// A planned hand-over: the lease is won 300 ms after the other node's
	// fetch. Seeded with the cached quote; fetched on the old phase.
	advance(100 * time.Millisecond)
	last := put(101, 0)
	advance(300 * time.Millisecond)
	owned.Store(true)
	r.Rescan()
	if n := step(0); n != 0 {
		t.Fatalf("taken over 300 ms after the last fetch: fetched at once (%d), want at the old phase", n)
	}
	if s := p.seeded(); len(s) != 1 || s[0].Price != last.Price {
		t.Fatalf("seeds after the takeover: %+v, want the cached quote at %v", s, last.Price)
	}
	if tk, ch := hooked(); len(tk) != 1 || tk[0].Price != last.Price || len(ch) != 0 {
		t.Fatalf("alert hooks after the takeover: takeover %+v, changed %+v; want the cached quote, nothing changed", tk, ch)
	}
	if n := step(700 * time.Millisecond); n != 1 {
		t.Fatalf("one interval after the last fetch: %d fetches, want 1", n)
	}
	// The fetch changed the price (101 → 1): the owner evaluates it.
	if _, ch := hooked(); len(ch) != 1 || ch[0].Symbol != sym || ch[0].Price != 1 {
		t.Fatalf("changed quotes handed to the alert hook: %+v, want the fetched one", ch)
	}

	// Lost, then won again after the new holder died: the cache is 2 s
	// old, so the takeover fetches at once, seeded with that quote.
	owned.Store(false)
	r.Rescan() // as the lease round does when a lease is lost
	step(0)
	advance(200 * time.Millisecond)
	last = put(105, 0)
	advance(2 * time.Second)
	owned.Store(true)
	r.Rescan()
	if n := step(0); n != 2 {
		t.Fatalf("failover: %d fetches in all, want a second one at once", n)
	}
	if s := p.seeded(); len(s) != 2 || s[1].Price != last.Price {
		t.Fatalf("seeds after the failover: %+v, want a second one at %v", s, last.Price)
	}
	if tk, _ := hooked(); len(tk) != 2 || tk[1].Price != last.Price {
		t.Fatalf("takeovers handed to the alert hook: %+v, want a second one at %v", tk, last.Price)
	}

	// A rebuild (the shared stores lost their state) forgets who owned
	// what: the next scan seeds again, though the lease never moved.
	r.forgetOwnership()
	step(0)
	if s := p.seeded(); len(s) != 3 {
		t.Fatalf("seeds after a rebuild: %d, want 3", len(s))
	}
	// Scans that change nothing seed nothing.
	step(interval)
	step(interval)
	if s := p.seeded(); len(s) != 3 {
		t.Fatalf("seeds after steady scans: %d, want still 3", len(s))
	}
}

// A quote of another source is never handed to Seed.
func TestSeedOnlyOwnSource(t *testing.T) {
	src := &source{Source: Source{Provider: &seedingProvider{}}}
	src.seeder = seederOf(wrapper{src.Provider})
	if src.seeder == nil {
		t.Fatal("the seeder behind the wrapper was not found")
	}
	if got := src.seedOf(nil, quotehub.Quote{Symbol: "X", Source: "other"}); len(got) != 0 {
		t.Errorf("a foreign quote was kept for seeding: %+v", got)
	}
	if got := src.seedOf(nil, quotehub.Quote{Symbol: "X", Source: "counting"}); len(got) != 1 {
		t.Errorf("the provider's own quote was not kept for seeding")
	}
	if seederOf(&countingProvider{}) != nil {
		t.Error("a provider without Seed reported as a seeder")
	}
}

// A symbol this node owns from the moment it learns of it (its first
// subscriber is here, the value came from another node's earlier lease) is
// seeded from the cache read that schedules it, without a second read.
func TestNewOwnedSymbolIsSeeded(t *testing.T) {
	p := &seedingProvider{countingProvider: countingProvider{syms: map[string]int{}}}
	cache := memory.NewCache()
	const sym = "KRW-ETH"
	now := time.Now()
	q := quotehub.Quote{Symbol: sym, Price: 5, Currency: "KRW", TradeTime: now.UnixMilli(), Source: "counting",
		Market: quotehub.MarketOpen, Seq: 1, FetchedAt: now.UnixMilli()}
	if _, err := cache.Put(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Cache: cache, Bus: memory.NewBus(), Active: memory.NewActiveSet(),
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: sym, Exchange: quotehub.ExchangeUpbit, Currency: "KRW"}}),
		Sources: []Source{{Provider: p, Interval: time.Second}}, Metrics: NewMetrics(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.addActive(context.Background(), []string{sym})
	if s := p.seeded(); len(s) != 1 || s[0].Price != 5 {
		t.Fatalf("seeds: %+v, want the cached quote", s)
	}
	r.refreshDue(context.Background())
	r.wg.Wait()
	if s := p.seeded(); len(s) != 1 {
		t.Fatalf("the first scan seeded again: %d seeds", len(s))
	}
}

// touchRecorder is an active set that reports every touch.
type touchRecorder struct {
	*memory.ActiveSet
	touched chan []string
}

func (a touchRecorder) Touch(ctx context.Context, t time.Time, syms ...string) error {
	select {
	case a.touched <- append([]string(nil), syms...):
	default:
	}
	return a.ActiveSet.Touch(ctx, t, syms...)
}

// Rebuild puts the node's local symbols back in the active set at once,
// not at the next heartbeat (an hour away here).
func TestRebuildRetouchesAtOnce(t *testing.T) {
	p := &seedingProvider{countingProvider: countingProvider{syms: map[string]int{}}}
	active := touchRecorder{ActiveSet: memory.NewActiveSet(), touched: make(chan []string, 16)}
	const sym = "KRW-XRP"
	r, err := New(Options{
		Cache: memory.NewCache(), Bus: memory.NewBus(), Active: active,
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: sym, Exchange: quotehub.ExchangeUpbit, Currency: "KRW"}}),
		Sources: []Source{{Provider: p, Interval: time.Second}}, Metrics: NewMetrics(nil),
		Local:     func() []string { return []string{sym} },
		Heartbeat: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select { // the heartbeat at start
	case <-active.touched:
	case <-time.After(5 * time.Second):
		t.Fatal("no touch at start")
	}
	r.Rebuild()
	select {
	case got := <-active.touched:
		if len(got) != 1 || got[0] != sym {
			t.Fatalf("rebuild touched %v, want [%s]", got, sym)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Rebuild did not re-touch the local symbols")
	}
}

// TestDegradedRefreshSeedsFromTheCache: a node whose lease rounds lag
// (Redis slow or away) refreshes what its own clients use; it continues
// from the cached quote like an owner that took over, instead of starting
// a walk of its own that a client would see as a jump.
func TestDegradedRefreshSeedsFromTheCache(t *testing.T) {
	p := &seedingProvider{countingProvider: countingProvider{syms: map[string]int{}}}
	cache := memory.NewCache()
	const sym = "KRW-XRP"
	now := time.Now()
	q := quotehub.Quote{Symbol: sym, Price: 7, Currency: "KRW", TradeTime: now.UnixMilli(), Source: "counting",
		Market: quotehub.MarketOpen, Seq: 1, FetchedAt: now.Add(-2 * time.Second).UnixMilli()}
	if _, err := cache.Put(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Cache: cache, Bus: memory.NewBus(), Active: memory.NewActiveSet(),
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: sym, Exchange: quotehub.ExchangeUpbit, Currency: "KRW"}}),
		Sources: []Source{{Provider: wrapper{p}, Interval: time.Second}}, Metrics: NewMetrics(nil),
		Owns: func(string) bool { return false }, Degraded: func() bool { return true },
		Local: func() []string { return []string{sym} },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.refreshDue(context.Background())
	r.wg.Wait()
	if s := p.seeded(); len(s) != 1 || s[0].Price != 7 {
		t.Fatalf("seeds while degraded: %+v, want the cached quote at 7", s)
	}
	if _, per := p.fetched(); per[sym] != 1 {
		t.Fatalf("fetches while degraded: %d, want 1 (the cached quote is 2 s old)", per[sym])
	}
}
