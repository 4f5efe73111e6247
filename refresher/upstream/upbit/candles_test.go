package upbit_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/refresher/upstream/upbit"
	"quotehub/refresher/upstream/upbit/upbittest"
	"quotehub/store/memory"
)

var candleNow = time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC)

func candles(t *testing.T, p *upbit.Provider, sym string, iv quotehub.Interval, from, to time.Time) ([]quotehub.Candle, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.Candles(ctx, quotehub.CandleSeries{Symbol: sym, Interval: iv}, quotehub.CalendarOf(quotehub.ExchangeUpbit), from, to)
}

func TestCandlesPagesBackAndPaces(t *testing.T) {
	s, p := setup(t, upbittest.Options{Now: func() time.Time { return candleNow }, PerSecond: 20}, upbit.Options{RatePerSecond: 20})
	from := candleNow.Add(-50 * time.Hour).Truncate(time.Hour)
	to := candleNow.Truncate(time.Hour)
	cs, err := candles(t, p, "KRW-BTC", quotehub.Minute1, from, to)
	if err != nil {
		t.Fatal(err)
	}
	// 3,000 minutes, one in 13 without a trade: 14 or 15 pages of 200.
	if len(cs) < 2700 || len(cs) > 3000 {
		t.Fatalf("%d minute candles over 50 hours", len(cs))
	}
	cal := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	for i, c := range cs {
		tm := time.UnixMilli(c.T)
		if tm.Before(from) || !tm.Before(to) {
			t.Fatalf("candle %d at %v outside [%v, %v)", i, tm, from, to)
		}
		if per, ok := cal.Period(tm, quotehub.Minute1); !ok || !per.Start.Equal(tm) {
			t.Fatalf("candle %d at %v is not a minute start", i, tm)
		}
		if i > 0 && cs[i-1].T >= c.T {
			t.Fatalf("candles out of order at %d", i)
		}
		if c.High < c.Low || c.High < c.Open || c.Low > c.Close {
			t.Fatalf("malformed candle %+v", c)
		}
	}
	if n := s.CandleRequests(); n < 14 || n > 16 {
		t.Fatalf("%d candle requests for 3,000 minutes, want 14 to 16 pages of 200", n)
	}
	if s.Status(http.StatusTooManyRequests) != 0 {
		t.Fatalf("the fake answered %d requests with 429: the pacing let too many through", s.Status(http.StatusTooManyRequests))
	}
}

func TestCandlesEndOfHistory(t *testing.T) {
	s, p := setup(t, upbittest.Options{Now: func() time.Time { return candleNow }}, upbit.Options{})
	cs, err := candles(t, p, "KRW-ETH", quotehub.Month1, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), candleNow)
	if err != nil {
		t.Fatal(err)
	}
	// January 2024 to December 2026, the open month included.
	if len(cs) != 36 || cs[0].T != upbittest.CandlesSince.UnixMilli() || s.CandleRequests() != 1 {
		t.Fatalf("%d months from %v in %d requests", len(cs), time.UnixMilli(cs[0].T).UTC(), s.CandleRequests())
	}
	wk, err := candles(t, p, "KRW-ETH", quotehub.Week1, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), candleNow)
	if err != nil || len(wk) != 5 || time.UnixMilli(wk[0].T).UTC().Weekday() != time.Monday {
		t.Fatalf("weeks of November: %d, %v", len(wk), err)
	}
}

func TestCandlesErrors(t *testing.T) {
	s, p := setup(t, upbittest.Options{Now: func() time.Time { return candleNow }}, upbit.Options{})
	_, err := candles(t, p, "KRW-NOPE", quotehub.Day1, candleNow.AddDate(0, -1, 0), candleNow)
	if quotehub.ErrorCode(err) != quotehub.EUnknownSymbol {
		t.Fatalf("unknown market: %v", err)
	}
	s.SetDown(true)
	_, err = candles(t, p, "KRW-BTC", quotehub.Day1, candleNow.AddDate(0, -1, 0), candleNow)
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
		t.Fatalf("maintenance: %v", err)
	}
}

// Through the history service: a warm read of closed days costs no
// request to the fake.
func TestCandlesThroughHistory(t *testing.T) {
	s, p := setup(t, upbittest.Options{Now: func() time.Time { return candleNow }}, upbit.Options{})
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit}}),
		Cache:   memory.NewCandleCache(func() time.Time { return candleNow }),
		Store:   memory.NewCandleStore(),
		Now:     func() time.Time { return candleNow },
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return p },
	})
	q := history.Request{Symbol: "KRW-BTC", Interval: quotehub.Day1, Count: 200, To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	cs, err := svc.Read(context.Background(), q)
	if err != nil || len(cs) != 200 {
		t.Fatalf("cold: %d candles, %v", len(cs), err)
	}
	cold := s.CandleRequests()
	if _, err := svc.Read(context.Background(), q); err != nil || s.CandleRequests() != cold {
		t.Fatalf("warm read: %v, %d more requests", err, s.CandleRequests()-cold)
	}
}
