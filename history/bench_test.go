package history_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
)

// The cost of one appended candle: O(1) whatever the window.
func BenchmarkAverageAdd(b *testing.B) {
	kinds := []struct {
		name string
		add  func(n int) func(float64) (float64, bool)
	}{
		{"SMA", func(n int) func(float64) (float64, bool) { return history.NewSMA(n).Add }},
		{"EMA", func(n int) func(float64) (float64, bool) { return history.NewEMA(n).Add }},
	}
	for _, k := range kinds {
		for _, n := range []int{5, 20, 120} {
			b.Run(k.name+"/n="+strconv.Itoa(n), func(b *testing.B) {
				add := k.add(n)
				x := 100.0
				for b.Loop() {
					x += 0.01
					add(x)
				}
			})
		}
	}
}

// A warm read of 200 day candles of a closed range: every chunk in the
// cache, no upstream call (checked), through the memory cache and Redis.
func BenchmarkWarmRead(b *testing.B) {
	caches := map[string]func(b *testing.B) quotehub.CandleCache{
		"memory": func(*testing.B) quotehub.CandleCache { return memory.NewCandleCache(nil) },
		"redis": func(b *testing.B) quotehub.CandleCache {
			rdb, prefix := redistest.Open(b)
			return redis.NewCandleCache(rdb, prefix)
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return testNow }}
			svc := history.New(history.Options{
				Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}}),
				Cache:   caches[name](b), Now: time.Now,
				Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src },
			})
			q := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200, To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
			ctx := context.Background()
			if cs, err := svc.Read(ctx, q); err != nil || len(cs) != 200 {
				b.Fatalf("cold read: %d candles, %v", len(cs), err)
			}
			calls := src.calls.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Read(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			if src.calls.Load() != calls {
				b.Fatalf("warm reads made %d upstream calls", src.calls.Load()-calls)
			}
		})
	}
}

// A cold read of 200 day candles from the sim-like fake upstream (no
// network): the chunks' fill, store write and cache write.
func BenchmarkColdRead(b *testing.B) {
	q := history.Request{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 200, To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	cat := memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX}})
	src := &fakeSource{listed: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), now: func() time.Time { return testNow }}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		svc := history.New(history.Options{Catalog: cat, Cache: memory.NewCandleCache(nil), Store: memory.NewCandleStore(),
			Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return src }})
		if _, err := svc.Read(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
