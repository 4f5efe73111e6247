package history_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
)

// countingStore counts the calls that reach a CandleStore: each is at
// least one SQL query.
type countingStore struct {
	quotehub.CandleStore
	reads, writes atomic.Int64
}

func (c *countingStore) PutCandles(ctx context.Context, b []quotehub.CandleBatch) error {
	c.writes.Add(1)
	return c.CandleStore.PutCandles(ctx, b)
}

func (c *countingStore) Candles(ctx context.Context, s quotehub.CandleSeries, from, to time.Time) ([]quotehub.Candle, error) {
	c.reads.Add(1)
	return c.CandleStore.Candles(ctx, s, from, to)
}

// TestWarmReadCostsNoUpstreamCallNorQuery reads a closed range through the
// embedded SQLite store: the cold read fetches and stores it once; a warm
// read costs neither an upstream call nor an SQL query; a node with a cold
// cache reads it from the database and then, warm, costs nothing either.
func TestWarmReadCostsNoUpstreamCallNorQuery(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store := &countingStore{CandleStore: db}
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return testNow }}
	cat := memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}})
	node := func() *history.Service {
		return history.New(history.Options{
			Catalog: cat, Cache: memory.NewCandleCache(nil), Store: store,
			Now:     func() time.Time { return testNow },
			Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
		})
	}
	r := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, To: time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), Count: 200}
	a := node()
	first, err := a.Read(ctx, r)
	if err != nil || len(first) != 200 {
		t.Fatalf("cold read: %d candles, %v", len(first), err)
	}
	if src.calls.Load() == 0 || store.writes.Load() == 0 {
		t.Fatalf("a cold read made %d upstream calls and %d writes", src.calls.Load(), store.writes.Load())
	}
	type counts struct{ upstream, reads, writes int64 }
	now := func() counts { return counts{src.calls.Load(), store.reads.Load(), store.writes.Load()} }
	warm := func(svc *history.Service, what string) {
		t.Helper()
		before := now()
		for range 3 {
			got, err := svc.Read(ctx, r)
			if err != nil || len(got) != len(first) || got[0] != first[0] || got[len(got)-1] != first[len(first)-1] {
				t.Fatalf("%s: %d candles, %v", what, len(got), err)
			}
		}
		if after := now(); after != before {
			t.Fatalf("%s: upstream calls, store reads, store writes went from %+v to %+v", what, before, after)
		}
	}
	warm(a, "warm read")

	b := node() // another node, or a restart: the cache is cold, the database is not
	before := now()
	if got, err := b.Read(ctx, r); err != nil || len(got) != len(first) {
		t.Fatalf("read from the database: %d candles, %v", len(got), err)
	}
	if after := now(); after.upstream != before.upstream || after.writes != before.writes || after.reads == before.reads {
		t.Fatalf("a cold cache over a filled database: %+v → %+v, want only store reads", before, after)
	}
	warm(b, "warm read after the database")
}

// TestStoredLiveCandleDoesNotPassForAWholeChunk: a node closed one day of
// a month live; a later cold read of that month gets the whole month from
// the upstream, and the live day as it was stored.
func TestStoredLiveCandleDoesNotPassForAWholeChunk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := quotehub.CandleSeries{Symbol: "005930.KS", Interval: quotehub.Day1}
	cal := quotehub.CalendarOf(quotehub.ExchangeKRX)
	last, _ := cal.Floor(time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), quotehub.Day1)
	live := quotehub.Candle{T: last.Start.UnixMilli(), Open: 1, High: 2, Low: 1, Close: 2, V: 5, Closed: true}
	if err := f.store.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: s, Candles: []quotehub.Candle{live}}}); err != nil {
		t.Fatal(err)
	}
	cs := f.read(t, history.Request{Symbol: s.Symbol, Interval: quotehub.Day1, From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), To: last.Start})
	if len(cs) < 20 || cs[len(cs)-1] != live {
		t.Fatalf("October: %d candles ending %+v, want the whole month ending with the stored live day", len(cs), cs[len(cs)-1])
	}
	if f.src.calls.Load() == 0 {
		t.Fatal("a month with one stored day was taken as whole")
	}
}

// downStore fails every call.
type downStore struct{}

func (downStore) PutCandles(context.Context, []quotehub.CandleBatch) error {
	return quotehub.Errorf(quotehub.EUnavailable, "database down")
}

func (downStore) Candles(context.Context, quotehub.CandleSeries, time.Time, time.Time) ([]quotehub.Candle, error) {
	return nil, quotehub.Errorf(quotehub.EUnavailable, "database down")
}

// TestReadWithTheDatabaseDown: reads are served from the upstream and the
// cache while the database fails.
func TestReadWithTheDatabaseDown(t *testing.T) {
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return testNow }}
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}}),
		Cache:   memory.NewCandleCache(nil), Store: downStore{}, Now: func() time.Time { return testNow },
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
	})
	r := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, To: time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), Count: 50}
	for range 2 {
		if cs, err := svc.Read(context.Background(), r); err != nil || len(cs) != 50 {
			t.Fatalf("read with the database down: %d candles, %v", len(cs), err)
		}
	}
	if src.calls.Load() == 0 {
		t.Fatal("no upstream call")
	}
}
