package refresher_test

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/refresher"
	"quotehub/refresher/upstream/sim"
	"quotehub/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider answers with whatever fetch returns; it stands in for an
// upstream where the sim cannot produce the case (malformed payloads,
// partial failures, requests that hang).
type fakeProvider struct {
	batch int
	fetch func(ctx context.Context, syms []string) ([]quotehub.Quote, error)
	calls atomic.Int64
}

func (p *fakeProvider) Name() string  { return "fake" }
func (p *fakeProvider) MaxBatch() int { return p.batch }
func (p *fakeProvider) Fetch(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
	p.calls.Add(1)
	return p.fetch(ctx, syms)
}

func good(sym string, price float64) quotehub.Quote {
	return quotehub.Quote{Symbol: sym, Price: price, Currency: "KRW", TradeTime: 1763726400123, Source: "fake", Market: quotehub.MarketOpen}
}

var catalog = []quotehub.SymbolInfo{
	{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "KRW-ETH", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "KRW-XRP", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "KRW-SOL", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "KRW-DOGE", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "AAPL", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
}

type env struct {
	r         *refresher.Refresher
	cache     *memory.Cache
	active    *memory.ActiveSet
	m         *refresher.Metrics
	mu        sync.Mutex
	published []quotehub.Quote
}

func (e *env) got() []quotehub.Quote {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]quotehub.Quote(nil), e.published...)
}

// start runs a refresher over memory stores until the test ends.
func start(t *testing.T, p quotehub.Provider, mod func(*refresher.Options)) *env {
	t.Helper()
	return startActive(t, p, mod)
}

// startActive is start with syms activated before the loop runs, so that
// its first walk finds them all due at once.
func startActive(t *testing.T, p quotehub.Provider, mod func(*refresher.Options), syms ...string) *env {
	t.Helper()
	e := &env{cache: memory.NewCache(), active: memory.NewActiveSet(), m: refresher.NewMetrics(nil)}
	bus := memory.NewBus()
	bus.Handle(func(qs []quotehub.Quote) {
		e.mu.Lock()
		e.published = append(e.published, qs...)
		e.mu.Unlock()
	})
	opts := refresher.Options{
		Cache: e.cache, Bus: bus, Active: e.active, Catalog: memory.NewCatalog(append(sim.Catalog(), catalog...)),
		Sources: []refresher.Source{{Provider: p, Interval: 20 * time.Millisecond}}, Metrics: e.m,
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := refresher.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	e.activate(syms...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *env) activate(syms ...string) {
	for _, s := range syms {
		e.r.Activate(s)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := refresher.New(refresher.Options{}); err == nil {
		t.Fatal("New accepted options without stores or sources")
	}
	p := sim.New(sim.Options{})
	_, err := refresher.New(refresher.Options{
		Cache: memory.NewCache(), Bus: memory.NewBus(), Active: memory.NewActiveSet(), Catalog: memory.NewCatalog(nil),
		Sources: []refresher.Source{{Provider: p}, {Provider: p}},
	})
	if err == nil {
		t.Fatal("New accepted the same provider twice")
	}
}

func TestClosedMarketIsNotPolled(t *testing.T) {
	// In a synctest bubble: 300 ms of the refresher's fake clock are
	// exactly 300 ms, however busy the machine is.
	synctest.Test(t, func(t *testing.T) {
		// Saturday in New York and Seoul; the clock runs from there.
		sat := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
		t0 := time.Now()
		now := func() time.Time { return sat.Add(time.Since(t0)) }
		p := sim.New(sim.Options{Now: now})
		e := start(t, p, func(o *refresher.Options) { o.Now = now })
		e.activate("AAPL", "KRW-BTC", "005930.KS")
		time.Sleep(300 * time.Millisecond)
		if n := p.FetchCount("AAPL"); n != 1 {
			t.Errorf("AAPL (closed) fetched %d times, want once for its close", n)
		}
		if n := p.FetchCount("005930.KS"); n != 1 {
			t.Errorf("005930.KS (closed) fetched %d times, want once", n)
		}
		if n := p.FetchCount("KRW-BTC"); n < 5 {
			t.Errorf("KRW-BTC (always open) fetched only %d times", n)
		}
		q, ok, _ := e.cache.Get(context.Background(), "AAPL")
		if !ok || q.Market != quotehub.MarketClosed {
			t.Fatalf("AAPL cached = %+v", q)
		}
		// A read of the closed market's close is a hit however old it is.
		rd, err := e.r.Read(context.Background(), "AAPL")
		if err != nil || rd.Result != quotehub.CacheHit || rd.MaxAge != 5*time.Second {
			t.Errorf("read of a closed market: %+v, %v", rd, err)
		}
	})
}

// recordingProvider answers every symbol with a good quote and records
// the size of every request.
func recordingProvider(batch int) (*fakeProvider, *sync.Mutex, *[]int) {
	var mu sync.Mutex
	var sizes []int
	p := &fakeProvider{batch: batch, fetch: func(_ context.Context, syms []string) ([]quotehub.Quote, error) {
		mu.Lock()
		sizes = append(sizes, len(syms))
		mu.Unlock()
		var qs []quotehub.Quote
		for _, s := range syms {
			qs = append(qs, good(s, 100))
		}
		return qs, nil
	}}
	return p, &mu, &sizes
}

func TestBatches(t *testing.T) {
	p, mu, sizes := recordingProvider(2)
	// Activated before the loop runs: activated one by one beside it, a
	// busy machine lets the loop fetch each as it comes.
	e := startActive(t, p, func(o *refresher.Options) {
		o.Sources[0].Interval = time.Hour
		o.Catalog = memory.NewCatalog(catalog)
	}, "KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE")
	poll.Until(t, 5*time.Second, "all five published", func() bool { return len(e.got()) == 5 })
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range *sizes {
		if n > 2 {
			t.Errorf("a request carried %d symbols; MaxBatch is 2", n)
		}
		total += n
	}
	if total != 5 || len(*sizes) != 3 {
		t.Errorf("requests %v, want 3 requests for 5 symbols", *sizes)
	}
	for _, q := range e.got() {
		if q.FetchedAt == 0 || q.Seq != uint64(q.FetchedAt) {
			t.Errorf("published %+v, want fetched_at set and the first seq at fetched_at", q)
		}
	}
}

func TestWriteThrough(t *testing.T) {
	t.Run("UnchangedValueKeepsSeqAndIsNotPublished", func(t *testing.T) {
		p := &fakeProvider{batch: 10, fetch: func(_ context.Context, syms []string) ([]quotehub.Quote, error) {
			return []quotehub.Quote{good(syms[0], 100)}, nil
		}}
		e := start(t, p, nil)
		e.activate("KRW-BTC")
		poll.Until(t, 5*time.Second, "several fetches", func() bool { return p.calls.Load() >= 4 })
		q1, _, _ := e.cache.Get(context.Background(), "KRW-BTC")
		poll.Until(t, 5*time.Second, "another fetch", func() bool { return p.calls.Load() >= 6 })
		q2, _, _ := e.cache.Get(context.Background(), "KRW-BTC")
		if q1.Seq == 0 || q2.Seq != q1.Seq || q2.FetchedAt <= q1.FetchedAt {
			t.Errorf("seq %d→%d fetched_at %d→%d: want seq kept, fetched_at moving", q1.Seq, q2.Seq, q1.FetchedAt, q2.FetchedAt)
		}
		if n := len(e.got()); n != 1 {
			t.Errorf("published %d times for one value", n)
		}
	})

	t.Run("PartialFailureKeepsTheGoodQuotes", func(t *testing.T) {
		p := &fakeProvider{batch: 10, fetch: func(_ context.Context, syms []string) ([]quotehub.Quote, error) {
			return []quotehub.Quote{good("KRW-BTC", 1), good("KRW-ETH", 2)}, quotehub.FetchErrors{
				"KRW-XRP": quotehub.Errorf(quotehub.EUnknownSymbol, "delisted"),
			}
		}}
		e := start(t, p, func(o *refresher.Options) { o.Sources[0].Interval = time.Hour })
		rd, err := e.r.Read(context.Background(), "KRW-XRP")
		if quotehub.ErrorCode(err) != quotehub.EUnknownSymbol {
			t.Fatalf("read of a symbol the upstream does not know: %+v %v", rd, err)
		}
		e.activate("KRW-BTC", "KRW-ETH", "KRW-XRP")
		poll.Until(t, 5*time.Second, "the good quotes", func() bool { return len(e.got()) == 2 })
		if _, ok, _ := e.cache.Get(context.Background(), "KRW-XRP"); ok {
			t.Error("a failed symbol got a cache entry")
		}
		if n := testutil.ToFloat64(e.m.UpstreamRequests.WithLabelValues("fake", "ok")); n < 1 {
			t.Errorf("a partial failure counted as %v ok requests", n)
		}
	})

	t.Run("MalformedQuotesNeverReachTheCache", func(t *testing.T) {
		bad := []quotehub.Quote{
			good("KRW-BTC", 0),
			good("KRW-ETH", -5),
			good("KRW-XRP", math.NaN()),
			func() quotehub.Quote { q := good("KRW-SOL", 10); q.TradeTime = 1763726400; return q }(), // seconds
			func() quotehub.Quote { q := good("KRW-DOGE", 10); q.Market = "maybe"; return q }(),
			good("AAPL", 10), // not asked for
		}
		p := &fakeProvider{batch: 10, fetch: func(context.Context, []string) ([]quotehub.Quote, error) { return bad, nil }}
		e := start(t, p, nil)
		e.activate("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE")
		poll.Until(t, 5*time.Second, "rejections", func() bool { return testutil.ToFloat64(e.m.Rejected.WithLabelValues("fake")) >= 5 })
		for _, s := range []string{"KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "AAPL"} {
			if _, ok, _ := e.cache.Get(context.Background(), s); ok {
				t.Errorf("%s: a malformed or unasked quote was cached", s)
			}
		}
		if n := len(e.got()); n != 0 {
			t.Errorf("%d malformed quotes published", n)
		}
	})
}

func TestConcurrencyIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, peak atomic.Int64
		release := make(chan struct{})
		p := &fakeProvider{batch: 1, fetch: func(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return []quotehub.Quote{good(syms[0], 1)}, nil
		}}
		e := start(t, p, func(o *refresher.Options) { o.Sources[0].Concurrency = 2 })
		e.activate("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE")
		poll.Until(t, 5*time.Second, "two requests in flight", func() bool { return inFlight.Load() == 2 })
		time.Sleep(50 * time.Millisecond) // fake time: two more ticks of the loop
		synctest.Wait()                   // and every goroutine they woke is blocked again
		if peak.Load() != 2 {
			t.Errorf("peak concurrency %d, want 2", peak.Load())
		}
		backlog := e.m.Backlog.WithLabelValues("fake")
		if got := testutil.ToFloat64(backlog); got != 3 {
			t.Errorf("backlog %v while two fetches are held, want 3", got)
		}
		close(release)
		poll.Until(t, 5*time.Second, "all five", func() bool { return len(e.got()) == 5 })
		poll.Until(t, 5*time.Second, "the backlog to empty", func() bool { return testutil.ToFloat64(backlog) == 0 })
		if testutil.CollectAndCount(e.m.Walk) != 1 {
			t.Error("walk duration not observed")
		}
	})
}

func TestReadMissUpstreamTimeout(t *testing.T) {
	p := &fakeProvider{batch: 1, fetch: func(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	e := start(t, p, func(o *refresher.Options) {
		o.FetchTimeout = 50 * time.Millisecond
		o.UpstreamTimeout = 100 * time.Millisecond
	})
	start := time.Now()
	_, err := e.r.Read(context.Background(), "KRW-BTC")
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable || time.Since(start) > time.Second {
		t.Fatalf("read = %v after %s", err, time.Since(start))
	}
	poll.Until(t, 5*time.Second, "the error outcome", func() bool {
		return testutil.ToFloat64(e.m.UpstreamRequests.WithLabelValues("fake", "error")) >= 1
	})
}

// TestPhasesMerge: symbols that become active at different moments end up
// refreshed together, one request per interval, not one request each.
func TestPhasesMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, mu, sizes := recordingProvider(10)
		e := start(t, p, func(o *refresher.Options) {
			o.Sources[0].Interval = 200 * time.Millisecond
			o.Catalog = memory.NewCatalog(catalog)
		})
		for _, s := range []string{"KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE"} {
			e.activate(s)
			time.Sleep(35 * time.Millisecond) // each its own phase to begin with
		}
		time.Sleep(time.Second) // the phases merge
		mu.Lock()
		start := len(*sizes)
		mu.Unlock()
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		recent := (*sizes)[start:]
		if len(recent) != 5 {
			t.Fatalf("%d requests in 1 s at a 200 ms interval (%v), want about 5", len(recent), recent)
		}
		for _, n := range recent {
			if n != 5 {
				t.Fatalf("request sizes %v after the phases had time to merge, want 5 each", recent)
			}
		}
	})
}
