package history_test

import (
	"context"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/store/memory"
)

func TestDayCloseQuote(t *testing.T) {
	ctx := context.Background()
	cal := quotehub.CalendarOf(quotehub.ExchangeKRX)
	info := quotehub.SymbolInfo{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX, Currency: "KRW"}
	thu, _ := cal.Period(time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC), quotehub.Day1)
	fri := cal.Next(thu, quotehub.Day1)
	sat := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	st := memory.NewCandleStore()
	if _, ok, err := history.DayCloseQuote(ctx, st, info, "sim", sat); ok || err != nil {
		t.Fatalf("with nothing stored: ok %v, %v", ok, err)
	}
	s := quotehub.CandleSeries{Symbol: info.Symbol, Interval: quotehub.Day1}
	_ = st.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: s, Candles: []quotehub.Candle{
		{T: thu.Start.UnixMilli(), Open: 100, High: 110, Low: 90, Close: 100, V: 5, Closed: true},
		{T: fri.Start.UnixMilli(), Open: 100, High: 106, Low: 99, Close: 105, V: 7, Closed: true},
	}}})
	q, ok, err := history.DayCloseQuote(ctx, st, info, "sim", sat)
	if err != nil || !ok {
		t.Fatalf("Saturday: ok %v, %v", ok, err)
	}
	want := quotehub.Quote{Symbol: info.Symbol, Price: 105, PrevClose: 100, Change: 5, ChangeRate: 0.05, Volume: 7,
		Has: quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume, Currency: "KRW",
		TradeTime: fri.End.UnixMilli() - 1, FetchedAt: fri.End.UnixMilli(), Source: "sim", Market: quotehub.MarketClosed}
	if q != want {
		t.Fatalf("quote %+v\nwant %+v", q, want)
	}
	// During Friday's session the stored Thursday is not Friday's close:
	// the last stored day ends before now, so it still answers with it.
	q, ok, _ = history.DayCloseQuote(ctx, st, info, "sim", fri.Start.Add(time.Hour))
	if !ok || q.Price != 100 || q.Has&quotehub.HasPrevClose != 0 {
		t.Fatalf("during Friday: %+v %v, want Thursday's close without a previous one", q, ok)
	}
}
