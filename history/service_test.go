package history_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
)

// fakeSource has a candle for every period of the calendar since listed,
// up to now, with values derived from the period start; it counts calls
// and can fail.
type fakeSource struct {
	listed time.Time
	now    func() time.Time
	calls  atomic.Int64
	failAt atomic.Int64 // fail the call with this number (1-based); 0: never
	down   atomic.Bool
}

func (f *fakeSource) Candles(_ context.Context, s quotehub.CandleSeries, cal *quotehub.Calendar, from, to time.Time) ([]quotehub.Candle, error) {
	n := f.calls.Add(1)
	if f.down.Load() || n == f.failAt.Load() {
		return nil, errors.New("upstream down")
	}
	if from.Before(f.listed) {
		from = f.listed
	}
	now := f.now()
	var out []quotehub.Candle
	for p, ok := cal.Ceil(from, s.Interval); ok && p.Start.Before(to) && !p.Start.After(now); p = cal.Next(p, s.Interval) {
		x := float64(p.Start.Unix()%100000) / 100
		out = append(out, quotehub.Candle{T: p.Start.UnixMilli(), Open: 100 + x, High: 110 + x, Low: 90 + x, Close: 105 + x, V: 1})
	}
	return out, nil
}

func (f *fakeSource) Listed(context.Context, string) (time.Time, bool, error) {
	return f.listed, true, nil
}

type fixture struct {
	svc   *history.Service
	src   *fakeSource
	store *memory.CandleStore
	cache *memory.CandleCache
	now   *atomic.Int64 // Unix ns
}

// now is a Thursday during the KRX session: 2026-12-03 11:20:30 KST.
var testNow = time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: new(atomic.Int64)}
	f.now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, f.now.Load()) }
	f.src = &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: clock}
	f.store = memory.NewCandleStore()
	f.cache = memory.NewCandleCache(clock)
	cat := memory.NewCatalog([]quotehub.SymbolInfo{
		{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
		{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
		{Symbol: "NOCANDLES", Exchange: quotehub.ExchangeNYSE, Currency: "USD"},
	})
	f.svc = history.New(history.Options{
		Catalog: cat, Cache: f.cache, Store: f.store, Now: clock,
		Sources: func(info quotehub.SymbolInfo) quotehub.CandleSource {
			if info.Symbol == "NOCANDLES" {
				return nil
			}
			return f.src
		},
	})
	return f
}

func (f *fixture) read(t *testing.T, r history.Request) []quotehub.Candle {
	t.Helper()
	cs, err := f.svc.Read(context.Background(), r)
	if err != nil {
		t.Fatalf("Read(%+v): %v", r, err)
	}
	return cs
}

func TestReadDays(t *testing.T) {
	f := newFixture(t)
	cal := quotehub.CalendarOf(quotehub.ExchangeKRX)
	cs := f.read(t, history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200})
	if len(cs) != 200 {
		t.Fatalf("got %d candles, want 200", len(cs))
	}
	// Newest last, each a session of the calendar, one after another.
	p, _ := cal.Period(testNow, quotehub.Day1)
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].T != p.Start.UnixMilli() {
			t.Fatalf("candle %d starts at %v, want %v", i, time.UnixMilli(cs[i].T), p.Start)
		}
		if cs[i].Closed != (i < len(cs)-1) {
			t.Fatalf("candle %d closed = %v", i, cs[i].Closed)
		}
		p = cal.Prev(p, quotehub.Day1)
	}
	cold := f.src.calls.Load()
	// A warm read of the same (and of closed periods only) costs nothing
	// upstream, apart from the open candle it reuses for a second.
	again := f.read(t, history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200})
	if len(again) != 200 || f.src.calls.Load() != cold {
		t.Fatalf("warm read: %d candles, %d upstream calls (cold read made %d)", len(again), f.src.calls.Load()-cold, cold)
	}
	to := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	closed := f.read(t, history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, To: to, Count: 50})
	if len(closed) != 50 || f.src.calls.Load() != cold {
		t.Fatalf("warm read of closed periods: %d candles, %d upstream calls", len(closed), f.src.calls.Load()-cold)
	}
	if last := closed[len(closed)-1]; !last.Closed || last.T > to.UnixMilli() {
		t.Fatalf("last candle before to = %+v", last)
	}
}

func TestReadConcurrentColdSharesOneFetchPerChunk(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := f.svc.Read(context.Background(), history.Request{Symbol: "KRW-BTC", Interval: quotehub.Hour1, Count: 500}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 500 hours reach back into October: 3 month chunks, plus at most one
	// fetch of the open candle.
	if n := f.src.calls.Load(); n > 4 {
		t.Fatalf("50 concurrent cold reads made %d upstream calls, want one per chunk", n)
	}
}

func TestReadUpstreamFailsMidBackfill(t *testing.T) {
	f := newFixture(t)
	f.src.failAt.Store(2) // the second chunk of the batch fails
	_, err := f.svc.Read(context.Background(), history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200})
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
		t.Fatalf("err = %v, want upstream_unavailable", err)
	}
	// Whatever was stored is whole chunks of closed candles only.
	s := quotehub.CandleSeries{Symbol: "005930.KS", Interval: quotehub.Day1}
	stored, _ := f.store.Candles(context.Background(), s, time.Time{}, testNow.Add(time.Hour))
	for _, c := range stored {
		if !c.Closed {
			t.Fatalf("stored an open candle %+v", c)
		}
	}
	f.src.failAt.Store(0)
	cs := f.read(t, history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200})
	if len(cs) != 200 {
		t.Fatalf("after recovery: %d candles", len(cs))
	}
}

func TestReadFromStoreWhenCacheIsCold(t *testing.T) {
	f := newFixture(t)
	to := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
	r := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, To: to, Count: 100}
	first := f.read(t, r)
	cold := f.src.calls.Load()
	// Another node: the same store, an empty cache.
	other := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}}),
		Cache:   memory.NewCandleCache(nil), Store: f.store,
		Now:     func() time.Time { return testNow },
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return f.src },
	})
	got, err := other.Read(context.Background(), r)
	if err != nil || len(got) != len(first) {
		t.Fatalf("read through the store: %d candles, %v", len(got), err)
	}
	if f.src.calls.Load() != cold {
		t.Fatalf("closed chunks in the store cost %d upstream calls", f.src.calls.Load()-cold)
	}
}

func TestReadCurrentChunkRefetchedAfterNextClose(t *testing.T) {
	f := newFixture(t)
	r := history.Request{Symbol: "KRW-BTC", Interval: quotehub.Minute1, Count: 10}
	cs := f.read(t, r)
	if last := cs[len(cs)-1]; last.Closed || last.T != time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("newest = %+v, want the open 02:20 minute", last)
	}
	calls := f.src.calls.Load()
	f.now.Add(int64(500 * time.Millisecond))
	f.read(t, r)
	if f.src.calls.Load() != calls {
		t.Fatalf("a read within the open candle's reuse refetched")
	}
	f.now.Add(int64(10 * time.Second)) // the same minute: only the open candle is asked again
	f.read(t, r)
	if f.src.calls.Load() != calls+1 {
		t.Fatalf("a read within the open minute made %d upstream calls, want 1 (the open candle)", f.src.calls.Load()-calls)
	}
	calls++
	f.now.Store(time.Date(2026, 12, 3, 2, 21, 3, 0, time.UTC).UnixNano()) // past 02:21 + grace
	cs = f.read(t, r)
	if f.src.calls.Load() == calls {
		t.Fatal("the current chunk outlived the close of its open candle")
	}
	if prev := cs[len(cs)-2]; !prev.Closed || prev.T != time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("the 02:20 minute = %+v, want closed", prev)
	}
}

func TestReadRanges(t *testing.T) {
	f := newFixture(t)
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 11, 6, 23, 0, 0, 0, time.UTC)
	cs := f.read(t, history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, From: from, To: to})
	if len(cs) != 5 || cs[0].T < from.UnixMilli() || cs[4].T > to.UnixMilli() {
		t.Fatalf("Nov 2–6: %d candles %v", len(cs), cs)
	}
	// From before the listing starts at the listing.
	cs = f.read(t, history.Request{Symbol: "KRW-BTC", Interval: quotehub.Month1, From: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), Count: 1000})
	if len(cs) == 0 || cs[0].T != time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("first month = %v, want February 2020 (listed Jan 2)", time.UnixMilli(cs[0].T).UTC())
	}
}

func TestReadErrors(t *testing.T) {
	f := newFixture(t)
	day := quotehub.Day1
	tests := []struct {
		name string
		r    history.Request
		code string
	}{
		{"UnknownSymbol", history.Request{Symbol: "NOPE", Interval: day}, quotehub.EUnknownSymbol},
		{"NoCandlesUpstream", history.Request{Symbol: "NOCANDLES", Interval: day}, quotehub.ENotFound},
		{"BadInterval", history.Request{Symbol: "KRW-BTC"}, quotehub.EBadRequest},
		{"CountTooLarge", history.Request{Symbol: "KRW-BTC", Interval: day, Count: 1001}, quotehub.EBadRequest},
		{"CountNegative", history.Request{Symbol: "KRW-BTC", Interval: day, Count: -1}, quotehub.EBadRequest},
		{"FromAfterTo", history.Request{Symbol: "KRW-BTC", Interval: day, From: testNow.Add(-time.Hour), To: testNow.Add(-2 * time.Hour)}, quotehub.EBadRequest},
		{"FromInTheFuture", history.Request{Symbol: "KRW-BTC", Interval: day, From: testNow.Add(time.Hour)}, quotehub.EBadRequest},
		{"BeforeListing", history.Request{Symbol: "KRW-BTC", Interval: day, To: time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)}, quotehub.EBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Read(context.Background(), tt.r)
			if quotehub.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if quotehub.ErrorMessage(err) == "" {
				t.Fatal("no message")
			}
		})
	}
	f.src.down.Store(true)
	_, err := f.svc.Read(context.Background(), history.Request{Symbol: "KRW-BTC", Interval: day})
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
		t.Fatalf("upstream down: %v", err)
	}
}
