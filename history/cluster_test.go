package history_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
)

// Two nodes sharing one Redis (the candle cache and the fetch lock): cold
// reads of the same chunks on both at once cost one upstream fetch per
// chunk in the whole cluster, and a warm read on either costs none.
func TestReadClusterSharesOneFetchPerChunk(t *testing.T) {
	rdb, prefix := redistest.Open(t)
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return testNow }}
	node := func(name string) *history.Service {
		return history.New(history.Options{
			Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}}),
			Cache:   redis.NewCandleCache(rdb, prefix),
			Lock:    redis.NewFetchLock(rdb, prefix, name, nil),
			Now:     func() time.Time { return testNow },
			Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
		})
	}
	a, b := node("a"), node("b")
	q := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200, To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	var wg sync.WaitGroup
	for i := range 20 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		wg.Go(func() {
			cs, err := svc.Read(context.Background(), q)
			if err != nil || len(cs) != 200 {
				t.Errorf("read: %d candles, %v", len(cs), err)
			}
		})
	}
	wg.Wait()
	// 200 KRX sessions back from November 2026 reach into February:
	// ten month chunks.
	if n := src.calls.Load(); n != 10 {
		t.Fatalf("20 cold reads on two nodes made %d upstream calls, want one per chunk (10)", n)
	}
	for _, svc := range []*history.Service{a, b} {
		if _, err := svc.Read(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.calls.Load(); n != 10 {
		t.Fatalf("warm reads made %d more upstream calls", n-10)
	}
}

// The current chunk is filled again after each close; a refill must not
// wait for the lock the previous fill left behind.
func TestReadClusterRefillsTheCurrentChunkAtOnce(t *testing.T) {
	rdb, prefix := redistest.Open(t)
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: clock}
	svc := history.New(history.Options{
		Catalog:  memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit}}),
		Cache:    redis.NewCandleCache(rdb, prefix),
		Lock:     redis.NewFetchLock(rdb, prefix, "a", nil),
		LockWait: time.Minute, // a refill that waited on the old lock would hang the test
		Now:      clock,
		Sources:  func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
	})
	q := history.Request{Symbol: "KRW-BTC", Interval: quotehub.Minute1, Count: 5}
	if _, err := svc.Read(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	// Redis expires the chunk on its own clock: drop it as the close would.
	iter := rdb.Scan(context.Background(), 0, prefix+"candles:*", 100).Iterator()
	for iter.Next(context.Background()) {
		rdb.Del(context.Background(), iter.Val())
	}
	mu.Lock()
	now = now.Add(35 * time.Second) // past 02:21 and the grace
	mu.Unlock()
	calls := src.calls.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := svc.Read(ctx, q)
	if err != nil || src.calls.Load() == calls {
		t.Fatalf("refill after the close: %v, %d upstream calls", err, src.calls.Load()-calls)
	}
	if last := cs[len(cs)-2]; !last.Closed || last.T != time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("the 02:20 minute = %+v, want closed", last)
	}
}

// In Redis the current chunk expires exactly at its open candle's close
// plus the grace, in the market's time; a final chunk is kept 30 days.
// Redis keeps time by the real clock, so this test does too.
func TestReadChunkExpiryInRedis(t *testing.T) {
	rdb, prefix := redistest.Open(t)
	now := time.Now()
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return now }}
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit}}),
		Cache:   redis.NewCandleCache(rdb, prefix), Now: func() time.Time { return now },
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
	})
	// 120 minutes reach back into the hour before last: a final chunk.
	if _, err := svc.Read(context.Background(), history.Request{Symbol: "KRW-BTC", Interval: quotehub.Minute1, Count: 120}); err != nil {
		t.Fatal(err)
	}
	cal := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	open, _ := cal.Period(now, quotehub.Minute1)
	s := quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Minute1}
	for key, want := range map[string]time.Time{
		history.ChunkKey(cal, s, now):                      open.End.Add(2 * time.Second), // the open minute's end + 2 s
		history.ChunkKey(cal, s, now.Add(-90*time.Minute)): now.Add(30 * 24 * time.Hour),
	} {
		got, err := rdb.PExpireTime(context.Background(), prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got.Milliseconds() != want.UnixMilli() {
			t.Errorf("%s expires at %v, want %v", key, time.UnixMilli(got.Milliseconds()).UTC(), want.UTC())
		}
	}
}
