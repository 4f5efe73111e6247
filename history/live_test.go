package history_test

import (
	"context"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
)

func TestLiveCandleMergesWithUpstream(t *testing.T) {
	f := newFixture(t)
	clock := func() time.Time { return time.Unix(0, f.now.Load()) }
	live := history.NewLive(func(sym string) (*quotehub.Calendar, bool) {
		return quotehub.CalendarOf(quotehub.ExchangeUpbit), sym == "KRW-BTC"
	}, clock)
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit}}),
		Cache:   memory.NewCandleCache(clock), Now: clock, Live: live.Current,
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return f.src },
	})
	quote := func(at time.Time, price float64) quotehub.Quote {
		return quotehub.Quote{Symbol: "KRW-BTC", Price: price, TradeTime: at.UnixMilli(), Market: quotehub.MarketOpen}
	}
	minute := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	live.Fold([]quotehub.Quote{quote(minute.Add(5*time.Second), 1000), quote(minute.Add(20*time.Second), 50), quote(minute.Add(29*time.Second), 700)})
	if c, ok := live.Current(quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Minute1}); !ok || c.Open != 1000 || c.Low != 50 || c.Close != 700 {
		t.Fatalf("live minute = %+v %v", c, ok)
	}
	r := history.Request{Symbol: "KRW-BTC", Interval: quotehub.Minute1, Count: 3}
	read := func() quotehub.Candle {
		cs, err := svc.Read(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return cs[len(cs)-1]
	}
	c := read()
	// The open is the upstream's (it saw the whole period), the extremes
	// and the close the live quotes'.
	if c.Closed || c.T != minute.UnixMilli() || c.Close != 700 || c.High != 1000 || c.Low != 50 || c.Open == 1000 {
		t.Fatalf("merged open candle = %+v", c)
	}
	calls := f.src.calls.Load()
	for i := range 5 { // past the 1 s reuse, still in the minute
		f.now.Add(int64(5 * time.Second))
		live.Fold([]quotehub.Quote{quote(clock(), 600+float64(i))})
		if got := read(); got.Close != 600+float64(i) {
			t.Fatalf("read %d: close %v, want the live %v", i, got.Close, 600+float64(i))
		}
	}
	if f.src.calls.Load() != calls {
		t.Fatalf("with a live candle the upstream was asked %d more times within the period", f.src.calls.Load()-calls)
	}
	// At the minute's end the live candle is closed and no longer served.
	f.now.Store(minute.Add(time.Minute).UnixNano())
	if _, ok := live.Current(quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Minute1}); ok {
		t.Fatal("the live minute is still open after its end")
	}
	// A symbol without a calendar is not folded.
	live.Fold([]quotehub.Quote{{Symbol: "005930.KS", Price: 1, TradeTime: minute.UnixMilli()}})
	if _, ok := live.Current(quotehub.CandleSeries{Symbol: "005930.KS", Interval: quotehub.Day1}); ok {
		t.Fatal("folded a symbol the calendar func refused")
	}
}
