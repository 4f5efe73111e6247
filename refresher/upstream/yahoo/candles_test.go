package yahoo_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/refresher/upstream/yahoo/yahootest"
	"quotehub/store/memory"
)

// Thursday 2026-12-03 11:20 in New York: NYSE open.
var yahooNow = time.Date(2026, 12, 3, 16, 20, 0, 0, time.UTC)

func yahooCandles(t *testing.T, e *env, sym, exchange string, iv quotehub.Interval, from, to time.Time) ([]quotehub.Candle, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.p.Candles(ctx, quotehub.CandleSeries{Symbol: sym, Interval: iv}, quotehub.CalendarOf(exchange), from, to)
}

func TestCandlesMapBarsToPeriods(t *testing.T) {
	e := newEnv(t, yahootest.Options{Budget: -1, Now: at(yahooNow)}, fast())
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	tests := []struct {
		name      string
		sym, ex   string
		iv        quotehub.Interval
		from, to  time.Time
		wantCount int
	}{
		// November 2026: 21 sessions (Thanksgiving closed, the 27th a half day).
		{"days of November", "AAPL", quotehub.ExchangeNYSE, quotehub.Day1,
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 20},
		// Weeks stamped at Monday midnight map to the week's period.
		{"weeks of 2026 H2", "AAPL", quotehub.ExchangeNYSE, quotehub.Week1,
			time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 21},
		{"months of 2026", "005930.KS", quotehub.ExchangeKRX, quotehub.Month1,
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := yahooCandles(t, e, tt.sym, tt.ex, tt.iv, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != tt.wantCount {
				t.Fatalf("%d candles, want %d", len(cs), tt.wantCount)
			}
			cal := quotehub.CalendarOf(tt.ex)
			for _, c := range cs {
				p, ok := cal.Period(time.UnixMilli(c.T), tt.iv)
				if !ok || p.Start.UnixMilli() != c.T {
					t.Fatalf("candle at %v is not a period start", time.UnixMilli(c.T))
				}
			}
		})
	}
	// The open day's bar is stamped with its last trade; it is today's.
	cs, err := yahooCandles(t, e, "AAPL", quotehub.ExchangeNYSE, quotehub.Day1, yahooNow.AddDate(0, 0, -3), yahooNow)
	today, _ := nyse.Period(yahooNow, quotehub.Day1)
	if err != nil || len(cs) == 0 || cs[len(cs)-1].T != today.Start.UnixMilli() {
		t.Fatalf("open day: %v %v", cs, err)
	}
}

func TestCandlesNullBarsAndOldMinutes(t *testing.T) {
	e := newEnv(t, yahootest.Options{Budget: -1, Now: at(yahooNow)}, fast())
	from := time.Date(2026, 12, 2, 14, 30, 0, 0, time.UTC) // Wednesday's open
	cs, err := yahooCandles(t, e, "AAPL", quotehub.ExchangeNYSE, quotehub.Minute1, from, from.Add(390*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) < 330 || len(cs) >= 390 {
		t.Fatalf("%d minutes of a 390-minute session, want the ones with trades", len(cs))
	}
	// Yahoo keeps minutes for 30 days: older ranges have no candles.
	old := yahooNow.AddDate(0, -2, 0)
	cs, err = yahooCandles(t, e, "AAPL", quotehub.ExchangeNYSE, quotehub.Minute1, old, old.Add(time.Hour))
	if err != nil || len(cs) != 0 {
		t.Fatalf("minutes two months back: %d, %v", len(cs), err)
	}
	if e.srv.Status(http.StatusUnprocessableEntity) != 1 {
		t.Fatalf("422s = %d", e.srv.Status(http.StatusUnprocessableEntity))
	}
}

func TestCandlesErrorsAndHistory(t *testing.T) {
	e := newEnv(t, yahootest.Options{Budget: -1, Now: at(yahooNow)}, fast())
	_, err := yahooCandles(t, e, "NOPE", quotehub.ExchangeNYSE, quotehub.Day1, yahooNow.AddDate(0, -1, 0), yahooNow)
	wantCode(t, err, quotehub.EUnknownSymbol)
	e.srv.SetDown(true)
	_, err = yahooCandles(t, e, "AAPL", quotehub.ExchangeNYSE, quotehub.Day1, yahooNow.AddDate(0, -1, 0), yahooNow)
	wantCode(t, err, quotehub.EUpstreamUnavailable)
	e.srv.SetDown(false)

	// Through the history service: a warm read of closed days costs no
	// request.
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog([]quotehub.SymbolInfo{{Symbol: "AAPL", Exchange: quotehub.ExchangeNASDAQ}}),
		Cache:   memory.NewCandleCache(at(yahooNow)), Now: at(yahooNow),
		Sources: func(quotehub.SymbolInfo) quotehub.CandleSource { return e.p },
	})
	q := history.Request{Symbol: "AAPL", Interval: quotehub.Day1, Count: 200, To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	cs, err := svc.Read(context.Background(), q)
	if err != nil || len(cs) != 200 {
		t.Fatalf("cold: %d, %v", len(cs), err)
	}
	cold := e.srv.CandleRequests()
	if _, err := svc.Read(context.Background(), q); err != nil || e.srv.CandleRequests() != cold {
		t.Fatalf("warm: %v, %d more requests", err, e.srv.CandleRequests()-cold)
	}
}
