package history_test

import (
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
)

func TestChunkKey(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	upbit := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	at := time.Date(2026, 12, 3, 6, 30, 0, 0, time.UTC) // 15:30 in Seoul, 01:30 in New York
	tests := []struct {
		cal  *quotehub.Calendar
		sym  string
		iv   quotehub.Interval
		t    time.Time
		want string
	}{
		{upbit, "KRW-BTC", quotehub.Minute1, at, "candles:{KRW-BTC}:1m:2026-12-03T06"},
		{krx, "005930.KS", quotehub.Minute1, at, "candles:{005930.KS}:1m:2026-12-03T15"},
		{nyse, "AAPL", quotehub.Minute1, at, "candles:{AAPL}:1m:2026-12-03T01"},
		{upbit, "KRW-BTC", quotehub.Minute5, at, "candles:{KRW-BTC}:5m:2026-12-03"},
		{upbit, "KRW-BTC", quotehub.Minute15, at, "candles:{KRW-BTC}:15m:2026-12-03"},
		{upbit, "KRW-BTC", quotehub.Hour1, at, "candles:{KRW-BTC}:1h:2026-12"},
		{upbit, "KRW-BTC", quotehub.Day1, at, "candles:{KRW-BTC}:1d:2026-12"},
		{nyse, "AAPL", quotehub.Day1, time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "candles:{AAPL}:1d:2026-12"},
		{upbit, "KRW-BTC", quotehub.Week1, time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC), "candles:{KRW-BTC}:1w:2026"},
		{upbit, "KRW-BTC", quotehub.Month1, at, "candles:{KRW-BTC}:1M:2026"},
	}
	for _, tt := range tests {
		s := quotehub.CandleSeries{Symbol: tt.sym, Interval: tt.iv}
		if got := history.ChunkKey(tt.cal, s, tt.t); got != tt.want {
			t.Errorf("ChunkKey(%s, %s, %v) = %q, want %q", tt.cal.Name(), s, tt.t, got, tt.want)
		}
	}
}

func TestChunkExpiry(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	upbit := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	seoul, ny := krx.Location(), nyse.Location()
	const keep, grace = 720 * time.Hour, 2 * time.Second
	tests := []struct {
		name      string
		cal       *quotehub.Calendar
		iv        quotehub.Interval
		t, now    time.Time
		want      time.Time
		wantFinal bool
	}{
		{"KRX current month of days expires at today's close", krx, quotehub.Day1,
			time.Date(2026, 12, 3, 10, 0, 0, 0, seoul), time.Date(2026, 12, 3, 11, 20, 0, 0, seoul),
			time.Date(2026, 12, 3, 15, 30, 2, 0, seoul), false},
		{"KRX after the close: tomorrow's close", krx, quotehub.Day1,
			time.Date(2026, 12, 3, 10, 0, 0, 0, seoul), time.Date(2026, 12, 3, 16, 0, 0, 0, seoul),
			time.Date(2026, 12, 4, 15, 30, 2, 0, seoul), false},
		{"KRX December is final after Dec 30's close", krx, quotehub.Day1,
			time.Date(2026, 12, 3, 10, 0, 0, 0, seoul), time.Date(2026, 12, 30, 15, 30, 0, 0, seoul),
			time.Date(2026, 12, 30, 15, 30, 0, 0, seoul).Add(keep), true},
		{"NYSE half day: the hour closes at 13:00", nyse, quotehub.Hour1,
			time.Date(2026, 11, 27, 12, 40, 0, 0, ny), time.Date(2026, 11, 27, 12, 40, 0, 0, ny),
			time.Date(2026, 11, 27, 13, 0, 2, 0, ny), false},
		{"Upbit minute chunk: the open minute's end", upbit, quotehub.Minute1,
			time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC), time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC),
			time.Date(2026, 12, 3, 2, 21, 2, 0, time.UTC), false},
		{"Upbit past hour chunk is final", upbit, quotehub.Minute1,
			time.Date(2026, 12, 3, 1, 20, 0, 0, time.UTC), time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC),
			time.Date(2026, 12, 3, 2, 20, 30, 0, time.UTC).Add(keep), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := quotehub.CandleSeries{Symbol: "X", Interval: tt.iv}
			got, final := history.ChunkExpiry(tt.cal, s, tt.t, tt.now, keep, grace)
			if !got.Equal(tt.want) || final != tt.wantFinal {
				t.Fatalf("expiry = %v (final %v), want %v (final %v)", got, final, tt.want, tt.wantFinal)
			}
		})
	}
}
