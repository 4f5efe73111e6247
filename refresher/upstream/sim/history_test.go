package sim_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"quotehub"
	"quotehub/refresher/upstream/sim"
)

func candles(t *testing.T, p *sim.Provider, sym string, iv quotehub.Interval, from, to time.Time) []quotehub.Candle {
	t.Helper()
	info := mustInfo(t, sym)
	cs, err := p.Candles(context.Background(), quotehub.CandleSeries{Symbol: sym, Interval: iv}, quotehub.CalendarOf(info.Exchange), from, to)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func mustInfo(t *testing.T, sym string) quotehub.SymbolInfo {
	t.Helper()
	for _, info := range sim.Catalog() {
		if info.Symbol == sym {
			return info
		}
	}
	t.Fatalf("%s is not in the sim catalogue", sym)
	return quotehub.SymbolInfo{}
}

// Every node computes the same history: it depends on the seed, the symbol
// and the period only, not on when or in what order it is asked.
func TestHistoryIsDeterministic(t *testing.T) {
	now := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	a := sim.New(sim.Options{Now: func() time.Time { return now }})
	b := sim.New(sim.Options{Now: func() time.Time { return now.Add(72 * time.Hour) }})
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, sym := range []string{"005930.KS", "KRW-BTC", "AAPL"} {
		for _, iv := range []quotehub.Interval{quotehub.Minute15, quotehub.Day1} {
			// b asks in two pieces, the later one first.
			mid := time.Date(2026, 11, 17, 0, 0, 0, 0, time.UTC)
			end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // closed for both
			late := candles(t, b, sym, iv, mid, end)
			early := candles(t, b, sym, iv, from, mid)
			whole := candles(t, a, sym, iv, from, end)
			if got := append(early, late...); !slices.Equal(got, whole) {
				t.Fatalf("%s %s: nodes disagree (%d vs %d candles)", sym, iv, len(got), len(whole))
			}
			if len(whole) == 0 {
				t.Fatalf("%s %s: no candles", sym, iv)
			}
		}
	}
	c := sim.New(sim.Options{Seed: 2, Now: func() time.Time { return now }})
	if slices.Equal(candles(t, c, "KRW-BTC", quotehub.Day1, from, now), candles(t, a, "KRW-BTC", quotehub.Day1, from, now)) {
		t.Fatal("another seed gave the same history")
	}
}

func TestHistoryCandlesAreWellFormed(t *testing.T) {
	now := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	p := sim.New(sim.Options{Now: func() time.Time { return now }})
	for _, sym := range []string{"005930.KS", "KRW-BTC", "AAPL"} {
		cal := quotehub.CalendarOf(mustInfo(t, sym).Exchange)
		for _, iv := range quotehub.Intervals {
			from := now.Add(-400 * 24 * time.Hour)
			if iv.Intraday() {
				from = now.Add(-5 * 24 * time.Hour)
			}
			cs := candles(t, p, sym, iv, from, now)
			for i, c := range cs {
				per, ok := cal.Period(time.UnixMilli(c.T), iv)
				if !ok || per.Start.UnixMilli() != c.T {
					t.Fatalf("%s %s: candle at %v is not a period start", sym, iv, time.UnixMilli(c.T))
				}
				if c.High < max(c.Open, c.Close) || c.Low > min(c.Open, c.Close) || !(c.Low > 0) || !(c.V > 0) {
					t.Fatalf("%s %s: malformed candle %+v", sym, iv, c)
				}
				if i > 0 && cs[i-1].T >= c.T {
					t.Fatalf("%s %s: candles out of order", sym, iv)
				}
			}
		}
	}
}

// The live walk starts on the history path: the first live price is the
// open candle's close give or take the walk's first step.
func TestHistoryJoinsTheLiveWalk(t *testing.T) {
	now := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC) // KRX open, US closed
	for _, sym := range []string{"005930.KS", "KRW-BTC", "AAPL"} {
		p := sim.New(sim.Options{Now: func() time.Time { return now }})
		q := fetch(t, p, sym)[0]
		cs := candles(t, p, sym, quotehub.Day1, now.Add(-10*24*time.Hour), now.Add(time.Hour))
		last := cs[len(cs)-1]
		if d := math.Abs(q.Price-last.Close) / last.Close; d > 0.003 {
			t.Errorf("%s: live price %v is %.2f %% from the history's %v", sym, q.Price, 100*d, last.Close)
		}
	}
}

func TestHistoryListingAndFailures(t *testing.T) {
	now := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	p := sim.New(sim.Options{Now: func() time.Time { return now }})
	listed, ok, err := p.Listed(context.Background(), "KRW-BTC")
	if err != nil || !ok || listed.Year() < 2019 || listed.Year() > 2020 {
		t.Fatalf("Listed = %v %v %v", listed, ok, err)
	}
	if cs := candles(t, p, "KRW-BTC", quotehub.Day1, listed.AddDate(-1, 0, 0), listed); len(cs) != 0 {
		t.Fatalf("%d candles before the listing", len(cs))
	}
	if cs := candles(t, p, "KRW-BTC", quotehub.Day1, listed.AddDate(-1, 0, 0), listed.AddDate(0, 0, 3)); len(cs) != 3 || cs[0].T != listed.UnixMilli() {
		t.Fatalf("first days after the listing: %v", cs)
	}
	p.SetDown(true)
	_, err = p.Candles(context.Background(), quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Day1}, quotehub.CalendarOf(quotehub.ExchangeUpbit), listed, now)
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
		t.Fatalf("down: %v", err)
	}
	if p.CandleCalls() != 3 {
		t.Fatalf("CandleCalls = %d, want 3", p.CandleCalls())
	}
}
