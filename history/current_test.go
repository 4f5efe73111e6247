package history_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
)

// Current is the newest candle of a read, merged the same way; Final
// merges a live candle whose period ended with the upstream's view of that
// period (kept when the next period's view replaced it); Check answers as
// a read does; OnOpen tells when the upstream's view of an open period
// changed.
func TestCurrentAndFinal(t *testing.T) {
	f := newFixture(t)
	clock := func() time.Time { return time.Unix(0, f.now.Load()) }
	live := history.NewLive(func(sym string) (*quotehub.Calendar, bool) {
		return quotehub.CalendarOf(quotehub.ExchangeUpbit), sym == "KRW-BTC"
	}, clock)
	var opened atomic.Int64
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit}, {Symbol: "NOCANDLES", Exchange: quotehub.ExchangeNYSE}}),
		Cache:   memory.NewCandleCache(clock), Now: clock, Live: live.Current,
		OnOpen: func(quotehub.CandleSeries) { opened.Add(1) },
		Sources: func(info quotehub.SymbolInfo) quotehub.CandleSource {
			if info.Symbol == "NOCANDLES" {
				return nil
			}
			return f.src
		},
	})
	ctx := context.Background()
	s := quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Minute1}
	minute := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	quote := func(at time.Time, price float64, seq uint64) quotehub.Quote {
		return quotehub.Quote{Symbol: "KRW-BTC", Price: price, TradeTime: at.UnixMilli(), Seq: seq, FetchedAt: at.UnixMilli()}
	}
	live.Fold([]quotehub.Quote{quote(minute.Add(5*time.Second), 1000, 1), quote(minute.Add(20*time.Second), 50, 2)})
	c, p, ok, err := svc.Current(ctx, s)
	if err != nil || !ok || p.Start != minute || p.End != minute.Add(time.Minute) {
		t.Fatalf("Current = %+v %v %v %v", c, p, ok, err)
	}
	cs, err := svc.Read(ctx, history.Request{Symbol: "KRW-BTC", Interval: quotehub.Minute1, Count: 2})
	if err != nil || cs[len(cs)-1] != c {
		t.Fatalf("Current %+v, newest read %+v (%v)", c, cs[len(cs)-1], err)
	}
	if c.High != 1000 || c.Low != 50 || c.Close != 50 || c.Open == 1000 {
		t.Fatalf("Current is not the merge of live and upstream: %+v", c)
	}
	if opened.Load() == 0 {
		t.Errorf("OnOpen not called when the upstream's view of the open period was fetched")
	}
	if ic, ok := live.CurrentStamped(s); !ok || ic.Seq != 2 || ic.FetchedAt != minute.Add(20*time.Second).UnixMilli() {
		t.Errorf("stamp = %+v %v", ic, ok)
	}

	// The minute ends; the next one's view replaces the memo.
	f.now.Store(minute.Add(70 * time.Second).UnixNano())
	live.Fold([]quotehub.Quote{quote(minute.Add(65*time.Second), 77, 3)})
	if c2, _, ok, _ := svc.Current(ctx, s); !ok || c2.T != minute.Add(time.Minute).UnixMilli() || c2.Close != 77 {
		t.Fatalf("next minute = %+v", c2)
	}
	ended, ok := live.Closed(s)
	if !ok || ended.T != minute.UnixMilli() || ended.Seq != 2 || ended.Close != 50 {
		t.Fatalf("live closed = %+v %v", ended, ok)
	}
	fin := svc.Final(s, ended.Candle)
	want := c
	want.Closed = true
	if fin != want {
		t.Fatalf("Final = %+v, want %+v (the last merge, closed)", fin, want)
	}

	if err := svc.Check(ctx, "KRW-BTC"); err != nil {
		t.Errorf("Check(KRW-BTC) = %v", err)
	}
	if err := svc.Check(ctx, "NOCANDLES"); quotehub.ErrorCode(err) != quotehub.ENotFound {
		t.Errorf("Check(NOCANDLES) = %v, want not_found", err)
	}
	if err := svc.Check(ctx, "NOPE"); quotehub.ErrorCode(err) != quotehub.EUnknownSymbol {
		t.Errorf("Check(NOPE) = %v, want unknown_symbol", err)
	}
}
