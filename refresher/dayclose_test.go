package refresher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/refresher"
)

// A read that misses the cache while the market is closed answers the
// stored daily close at once, without waiting for the upstream, whose
// fetch fills the cache behind it; an open market waits for the upstream
// as before.
func TestClosedMarketColdReadFallsBackToDayClose(t *testing.T) {
	sat := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) // Saturday: NASDAQ closed, Upbit open
	release := make(chan struct{})
	var released atomic.Bool
	p := &fakeProvider{batch: 10, fetch: func(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		out := make([]quotehub.Quote, len(syms))
		for i, s := range syms {
			out[i] = good(s, 200)
			out[i].Market = quotehub.MarketClosed
		}
		return out, nil
	}}
	var asked atomic.Int64
	closeQuote := quotehub.Quote{Symbol: "AAPL", Price: 190.5, Currency: "USD", TradeTime: sat.Add(-36 * time.Hour).UnixMilli(),
		FetchedAt: sat.Add(-36 * time.Hour).UnixMilli(), Source: "fake", Market: quotehub.MarketClosed}
	e := start(t, p, func(o *refresher.Options) {
		o.Now = func() time.Time { return sat }
		o.FetchTimeout = 5 * time.Second
		o.DayClose = func(_ context.Context, sym string) (quotehub.Quote, bool) {
			asked.Add(1)
			return closeQuote, sym == "AAPL"
		}
	})
	t.Cleanup(func() {
		if !released.Load() {
			close(release)
		}
	})
	rd, err := e.r.Read(context.Background(), "AAPL")
	if err != nil || rd.Quote != closeQuote || rd.Result != quotehub.CacheMiss {
		t.Fatalf("cold read of a closed market: %+v, %v; want the day close at once", rd, err)
	}
	// An open market does not ask for the close: it waits for the upstream.
	before := asked.Load()
	got := make(chan quotehub.Reading, 1)
	go func() { rd, _ := e.r.Read(context.Background(), "KRW-BTC"); got <- rd }()
	released.Store(true)
	close(release)
	if rd := <-got; rd.Quote.Price != 200 || asked.Load() != before {
		t.Fatalf("open market read: %+v, DayClose asked %d times", rd, asked.Load()-before)
	}
	// The fetch started behind the fallback fills the cache.
	poll.Until(t, 5*time.Second, "the upstream's quote of AAPL in the cache", func() bool {
		q, ok, _ := e.cache.Get(context.Background(), "AAPL")
		return ok && q.Price == 200
	})
	if rd, err := e.r.Read(context.Background(), "AAPL"); err != nil || rd.Quote.Price != 200 || rd.Result != quotehub.CacheHit {
		t.Fatalf("warm read after the fallback: %+v, %v", rd, err)
	}
}
