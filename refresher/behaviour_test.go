package refresher_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"quotehub"
	"quotehub/refresher"
	"quotehub/store/memory"
)

// The tests in this file run in a synctest bubble: the refresher's loop,
// its tickers and the read timeouts run on the bubble's fake clock, and
// synctest.Wait tells when every goroutine is blocked, so "the read has
// returned while the fetch is held" is an exact statement, not a race
// against a timeout.

// heldProvider answers every symbol it is asked with a quote at price, but
// a fetch waits while the provider is held. Create it inside the bubble.
type heldProvider struct {
	price   atomic.Int64
	calls   atomic.Int64
	mu      sync.Mutex
	gate    chan struct{} // closed: fetches answer at once
	perSym  map[string]int
	release sync.Once
}

func newHeldProvider(held bool) *heldProvider {
	p := &heldProvider{gate: make(chan struct{}), perSym: map[string]int{}}
	p.price.Store(100)
	if !held {
		p.open()
	}
	return p
}

// open lets every fetch, held or to come, answer.
func (p *heldProvider) open() { p.release.Do(func() { close(p.gate) }) }

func (p *heldProvider) fetched(sym string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.perSym[sym]
}

func (p *heldProvider) Name() string  { return "held" }
func (p *heldProvider) MaxBatch() int { return 10 }
func (p *heldProvider) Fetch(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
	p.calls.Add(1)
	p.mu.Lock()
	for _, s := range syms {
		p.perSym[s]++
	}
	p.mu.Unlock()
	select {
	case <-p.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	qs := make([]quotehub.Quote, 0, len(syms))
	for _, s := range syms {
		qs = append(qs, quotehub.Quote{Symbol: s, Price: float64(p.price.Load()), Currency: "KRW",
			TradeTime: 1763726400123, Source: "held", Market: quotehub.MarketOpen})
	}
	return qs, nil
}

// rig is a running refresher over memory stores, inside a bubble.
type rig struct {
	r     *refresher.Refresher
	cache *memory.Cache
}

// runRig starts a refresher with p until the test ends. Call it inside the
// bubble; the provider's gate is opened before the refresher stops, so a
// test that fails while a fetch is held still ends.
func runRig(t *testing.T, p *heldProvider, mod func(*refresher.Options)) *rig {
	t.Helper()
	g := &rig{cache: memory.NewCache()}
	opts := refresher.Options{
		Cache: g.cache, Bus: memory.NewBus(), Active: memory.NewActiveSet(), Catalog: memory.NewCatalog(catalog),
		Sources:   []refresher.Source{{Provider: p, Interval: time.Hour}},
		Freshness: 5 * time.Second, FetchTimeout: 2 * time.Second, UpstreamTimeout: time.Minute,
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := refresher.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { p.open(); cancel(); <-done })
	return g
}

type readResult struct {
	rd  quotehub.Reading
	err error
}

// readAsync reads sym on a goroutine of its own; the answer comes on the
// returned channel.
func (g *rig) readAsync(sym string) <-chan readResult {
	c := make(chan readResult, 1)
	go func() {
		rd, err := g.r.Read(context.Background(), sym)
		c <- readResult{rd, err}
	}()
	return c
}

// TestStaleWhileRevalidate: a stale value is answered at once, while the
// one background refresh it starts is still held by the upstream; the
// refresh then lands in the cache.
func TestStaleWhileRevalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newHeldProvider(true)
		g := runRig(t, p, nil)
		old := quotehub.Quote{Symbol: "KRW-BTC", Price: 90, Currency: "KRW", TradeTime: 1763726400000, Source: "held",
			Market: quotehub.MarketOpen, Seq: 1, FetchedAt: time.Now().Add(-10 * time.Second).UnixMilli()}
		if _, err := g.cache.Put(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		got := g.readAsync("KRW-BTC")
		synctest.Wait() // everything that can run has run: the fetch waits on the gate
		var res readResult
		select {
		case res = <-got:
		default:
			t.Fatal("a stale read waited for the upstream; it must answer at once")
		}
		if res.err != nil || res.rd.Result != quotehub.CacheStale || res.rd.Quote.Seq != 1 || res.rd.Age != 10*time.Second || res.rd.MaxAge != 0 {
			t.Fatalf("stale read = %+v, %v; want the stale value (seq 1, age 10s, no max-age)", res.rd, res.err)
		}
		if n := p.calls.Load(); n != 1 {
			t.Fatalf("%d fetches in flight after a stale read, want one background refresh", n)
		}
		// A second stale read joins the refresh in flight.
		if rd, err := g.r.Read(context.Background(), "KRW-BTC"); err != nil || rd.Result != quotehub.CacheStale {
			t.Fatalf("second stale read = %+v, %v", rd, err)
		}
		synctest.Wait()
		if n := p.calls.Load(); n != 1 {
			t.Fatalf("%d fetches after two stale reads, want one", n)
		}

		p.open()
		synctest.Wait()
		q, ok, _ := g.cache.Get(context.Background(), "KRW-BTC")
		if !ok || q.Price != 100 || q.Seq <= 1 || q.FetchedAt != time.Now().UnixMilli() {
			t.Fatalf("after the refresh the cache holds %+v, want the new price at a higher seq, fetched now", q)
		}
		if rd, err := g.r.Read(context.Background(), "KRW-BTC"); err != nil || rd.Result != quotehub.CacheHit || rd.MaxAge != 5*time.Second {
			t.Fatalf("read after the refresh = %+v, %v; want a hit with the whole freshness left", rd, err)
		}
	})
}

// TestMissWaitsForOneSharedFetch: concurrent reads of a cold symbol wait
// for one upstream fetch, and all get its value.
func TestMissWaitsForOneSharedFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newHeldProvider(true)
		g := runRig(t, p, nil)
		var readers []<-chan readResult
		for range 5 {
			readers = append(readers, g.readAsync("KRW-ETH"))
		}
		synctest.Wait()
		for i, c := range readers {
			select {
			case res := <-c:
				t.Fatalf("reader %d answered %+v, %v while the fetch was held; a miss waits for it", i, res.rd, res.err)
			default:
			}
		}
		if n := p.calls.Load(); n != 1 {
			t.Fatalf("%d upstream fetches for 5 concurrent cold reads, want 1", n)
		}
		start := time.Now()
		time.Sleep(time.Second) // within the fetch timeout (2 s)
		p.open()
		synctest.Wait()
		var seq uint64
		for i, c := range readers {
			var res readResult
			select {
			case res = <-c:
			default:
				t.Fatalf("reader %d still waits after the fetch ended", i)
			}
			if res.err != nil || res.rd.Result != quotehub.CacheMiss || res.rd.Quote.Price != 100 {
				t.Fatalf("reader %d = %+v, %v; want a miss with the fetched value", i, res.rd, res.err)
			}
			if i > 0 && res.rd.Quote.Seq != seq {
				t.Errorf("reader %d got seq %d, reader 0 seq %d: not one shared fetch", i, res.rd.Quote.Seq, seq)
			}
			seq = res.rd.Quote.Seq
		}
		if n := p.calls.Load(); n != 1 {
			t.Errorf("%d upstream fetches, want 1", n)
		}
		t.Logf("readers waited %v for the held fetch", time.Since(start))
	})
}

// TestMissGivesUpAtTheFetchTimeout: a miss whose fetch never ends fails
// with upstream_unavailable exactly when the fetch timeout is up.
func TestMissGivesUpAtTheFetchTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newHeldProvider(true)
		g := runRig(t, p, nil)
		start := time.Now()
		rd, err := g.r.Read(context.Background(), "KRW-XRP")
		if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
			t.Fatalf("read of a held cold symbol = %+v, %v; want upstream_unavailable", rd, err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("gave up after %v, want the fetch timeout, 2s", d)
		}
	})
}

// lock is a FetchLock for tests: TryLock answers ok and err, and counts.
type lock struct {
	ok    bool
	err   error
	tries atomic.Int64
}

func (l *lock) TryLock(context.Context, string, time.Duration) (bool, error) {
	l.tries.Add(1)
	return l.ok, l.err
}

// TestReadWhileAnotherNodeFetches: in a cluster, a miss whose fetch lock
// another node holds waits for that node's value to reach the cache
// instead of asking the upstream itself; without one by the fetch
// timeout, it fails. A node that cannot reach the lock fetches itself.
func TestReadWhileAnotherNodeFetches(t *testing.T) {
	t.Run("TheOtherNodesValueIsAnswered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newHeldProvider(false)
			p.price.Store(999) // what this node would get if it fetched
			l := &lock{}
			g := runRig(t, p, func(o *refresher.Options) { o.FetchLock = l })
			got := g.readAsync("KRW-SOL")
			time.Sleep(300 * time.Millisecond)
			synctest.Wait()
			select {
			case res := <-got:
				t.Fatalf("read answered %+v, %v before any value existed", res.rd, res.err)
			default:
			}
			theirs := quotehub.Quote{Symbol: "KRW-SOL", Price: 123, Currency: "KRW", TradeTime: 1763726400000, Source: "held",
				Market: quotehub.MarketOpen, Seq: 7, FetchedAt: time.Now().UnixMilli()}
			if _, err := g.cache.Put(context.Background(), theirs); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // well past the read's longest poll
			synctest.Wait()
			var res readResult
			select {
			case res = <-got:
			default:
				t.Fatal("the read did not pick up the value the other node stored")
			}
			if res.err != nil || res.rd.Result != quotehub.CacheMiss || res.rd.Quote.Seq != 7 || res.rd.Quote.Price != 123 {
				t.Fatalf("read = %+v, %v; want a miss answered with the other node's value", res.rd, res.err)
			}
			if n := p.calls.Load(); n != 0 || l.tries.Load() == 0 {
				t.Errorf("%d upstream fetches, %d lock tries: a node without the lock must not fetch", n, l.tries.Load())
			}
		})
	})

	t.Run("NoValueByTheFetchTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newHeldProvider(false)
			g := runRig(t, p, func(o *refresher.Options) { o.FetchLock = &lock{} })
			start := time.Now()
			_, err := g.r.Read(context.Background(), "KRW-SOL")
			if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable || time.Since(start) != 2*time.Second {
				t.Fatalf("read = %v after %v; want upstream_unavailable at the fetch timeout, 2s", err, time.Since(start))
			}
			if n := p.calls.Load(); n != 0 {
				t.Errorf("%d upstream fetches without the lock", n)
			}
		})
	})

	t.Run("LockUnreachableFetchesItself", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newHeldProvider(false)
			g := runRig(t, p, func(o *refresher.Options) { o.FetchLock = &lock{err: errors.New("redis: connection refused")} })
			rd, err := g.r.Read(context.Background(), "KRW-SOL")
			if err != nil || rd.Result != quotehub.CacheMiss || rd.Quote.Price != 100 {
				t.Fatalf("read = %+v, %v; want this node's own fetch", rd, err)
			}
		})
	})
}

// TestInactiveSymbolLeavesTheDueSet: a symbol stays active for the active
// window from the moment it loses its last local subscriber (Deactivate),
// and is no longer fetched once the window has passed.
func TestInactiveSymbolLeavesTheDueSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sym = "KRW-DOGE"
		p := newHeldProvider(false)
		var mu sync.Mutex
		local := []string{sym}
		g := runRig(t, p, func(o *refresher.Options) {
			o.Sources[0].Interval = time.Second
			o.ActiveWindow = 10 * time.Second
			o.Heartbeat = 8 * time.Second // re-touches at 8 s and 16 s
			o.Local = func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), local...) }
		})
		start := time.Now()
		at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))); synctest.Wait() }

		g.r.Activate(sym)
		at(23 * time.Second)
		subscribed := p.fetched(sym)
		if n := subscribed; n < 20 {
			t.Fatalf("fetched %d times in 23 s at a 1 s interval while subscribed", n)
		}
		// The last subscriber leaves at 23 s: active until 33 s. The last
		// heartbeat touch was at 16 s, so without the Deactivate touch it
		// would have left at 26 s.
		mu.Lock()
		local = nil
		mu.Unlock()
		g.r.Deactivate(sym)

		at(28 * time.Second)
		before := p.fetched(sym)
		at(32 * time.Second)
		if n := p.fetched(sym) - before; n < 3 {
			t.Fatalf("fetched %d times between 28 s and 32 s; it is active until 33 s (window from Deactivate at 23 s)", n)
		}
		at(36 * time.Second)
		after := p.fetched(sym)
		at(60 * time.Second)
		t.Logf("fetched %d times by 23 s, %d by 28 s, %d by 36 s", subscribed, before, after)
		if n := p.fetched(sym) - after; n != 0 {
			t.Fatalf("fetched %d more times between 36 s and 60 s, after its window ended at 33 s", n)
		}
		other := "KRW-BTC" // and a new symbol is still picked up
		g.r.Activate(other)
		at(60*time.Second + 500*time.Millisecond)
		if p.fetched(other) != 1 {
			t.Fatalf("a new symbol was fetched %d times", p.fetched(other))
		}
	})
}

// TestDegradedRefreshesWhatLocalClientsUse: while the shared stores are
// unreachable, a node refreshes its local subscriptions and recent reads
// even though it owns none of them; when they are back it stops, after
// calling OnRecover once.
func TestDegradedRefreshesWhatLocalClientsUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newHeldProvider(false)
		var degraded atomic.Bool
		var recovered atomic.Int64
		g := runRig(t, p, func(o *refresher.Options) {
			o.Sources[0].Interval = time.Second
			o.Owns = func(string) bool { return false } // another node refreshes everything
			o.Degraded = degraded.Load
			o.OnRecover = func() { recovered.Add(1) }
			o.Local = func() []string { return []string{"KRW-BTC"} }
		})
		g.r.Activate("KRW-BTC")
		if _, err := g.r.Read(context.Background(), "KRW-ETH"); err != nil { // a read fetches for itself
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		btc, eth := p.fetched("KRW-BTC"), p.fetched("KRW-ETH")
		if btc != 0 || eth != 1 {
			t.Fatalf("not degraded: KRW-BTC fetched %d times, KRW-ETH %d; want 0 and the read's 1 (not owned)", btc, eth)
		}

		degraded.Store(true)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := p.fetched("KRW-BTC"); n < 4 {
			t.Errorf("degraded for 5 s: the local subscription was fetched %d times, want about 5", n)
		}
		if n := p.fetched("KRW-ETH") - eth; n < 4 {
			t.Errorf("degraded for 5 s: the recent read was fetched %d more times, want about 5", n)
		}

		degraded.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := recovered.Load(); n != 1 {
			t.Fatalf("OnRecover called %d times, want once", n)
		}
		btc, eth = p.fetched("KRW-BTC"), p.fetched("KRW-ETH")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if p.fetched("KRW-BTC") != btc || p.fetched("KRW-ETH") != eth {
			t.Errorf("recovered: still fetching symbols another node owns (KRW-BTC %d→%d, KRW-ETH %d→%d)",
				btc, p.fetched("KRW-BTC"), eth, p.fetched("KRW-ETH"))
		}
	})
}
