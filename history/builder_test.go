package history_test

import (
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
)

func TestBuilderFoldsAndCloses(t *testing.T) {
	cal := quotehub.CalendarOf(quotehub.ExchangeKRX)
	seoul := cal.Location()
	b := history.NewBuilder(cal, quotehub.Minute1, quotehub.Day1)
	at := func(hm string, sec int) time.Time {
		v, _ := time.ParseInLocation("2006-01-02 15:04", "2026-12-03 "+hm, seoul)
		return v.Add(time.Duration(sec) * time.Second)
	}
	if got := b.Add(at("08:59", 30), 100, 1); len(got) != 0 {
		t.Fatalf("a trade before the open closed %v", got)
	}
	if _, _, ok := b.Current(quotehub.Minute1); ok {
		t.Fatal("a trade before the open opened a candle")
	}
	b.Add(at("09:00", 0), 100, 1)
	b.Add(at("09:00", 20), 105, 2)
	b.Add(at("09:00", 40), 98, 3)
	b.Add(at("09:00", 59), 101, 4)
	c, p, ok := b.Current(quotehub.Minute1)
	want := quotehub.Candle{T: at("09:00", 0).UnixMilli(), Open: 100, High: 105, Low: 98, Close: 101, V: 10}
	if !ok || c != want || !p.End.Equal(at("09:01", 0)) {
		t.Fatalf("open minute = %+v %v, want %+v", c, p, want)
	}
	closed := b.Add(at("09:02", 5), 102, 1)
	if len(closed) != 1 || closed[0].Interval != quotehub.Minute1 || !closed[0].Closed || closed[0].Close != 101 {
		t.Fatalf("closed = %+v, want the 09:00 minute", closed)
	}
	// A late trade of an earlier minute changes nothing of the 09:02 one.
	b.Add(at("09:01", 30), 500, 1)
	if c, _, _ := b.Current(quotehub.Minute1); c.High != 102 || c.T != at("09:02", 0).UnixMilli() {
		t.Fatalf("late trade touched the open minute: %+v", c)
	}
	day, _, _ := b.Current(quotehub.Day1)
	if day.Open != 100 || day.High != 500 || day.Low != 98 || day.V != 12 {
		t.Fatalf("day = %+v", day)
	}
	// The close of the session closes the day and the last minute.
	closed = b.CloseUntil(at("15:30", 0))
	if len(closed) != 2 {
		t.Fatalf("CloseUntil(15:30) closed %d candles, want the minute and the day", len(closed))
	}
	if _, _, ok := b.Current(quotehub.Day1); ok {
		t.Fatal("the day is still open after the close")
	}
}

func TestBuilderVolumeFromCumulative(t *testing.T) {
	b := history.NewBuilder(quotehub.CalendarOf(quotehub.ExchangeUpbit), quotehub.Hour1)
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	q := func(min int, price, vol float64) quotehub.Quote {
		return quotehub.Quote{Symbol: "KRW-BTC", Price: price, Volume: vol, Has: quotehub.HasVolume,
			TradeTime: base.Add(time.Duration(min) * time.Minute).UnixMilli()}
	}
	b.AddQuote(q(0, 10, 100)) // the first cumulative value is the baseline
	b.AddQuote(q(1, 11, 104))
	b.AddQuote(q(2, 12, 3)) // the cumulative volume started over
	c, _, _ := b.Current(quotehub.Hour1)
	if c.V != 7 {
		t.Fatalf("volume = %v, want 4 + 3", c.V)
	}
}

// A period the clock closed stays closed: a trade of it that arrives
// after its end (a quote fetched just before) does not open it again.
// Candles carry the seq and fetched_at of the newest quote folded in.
func TestBuilderClockCloseAndStamps(t *testing.T) {
	b := history.NewBuilder(quotehub.CalendarOf(quotehub.ExchangeUpbit), quotehub.Minute1)
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	q := func(sec int, price float64, seq uint64) quotehub.Quote {
		return quotehub.Quote{Symbol: "KRW-BTC", Price: price, Seq: seq, FetchedAt: int64(seq) * 10,
			TradeTime: base.Add(time.Duration(sec) * time.Second).UnixMilli()}
	}
	b.AddQuote(q(10, 100, 1))
	b.AddQuote(q(50, 101, 2))
	if c, ok := b.CurrentStamped(quotehub.Minute1); !ok || c.Seq != 2 || c.FetchedAt != 20 || c.Close != 101 {
		t.Fatalf("current = %+v", c)
	}
	closed := b.CloseUntil(base.Add(time.Minute))
	if len(closed) != 1 || closed[0].Seq != 2 || closed[0].FetchedAt != 20 || !closed[0].Closed {
		t.Fatalf("closed = %+v", closed)
	}
	if got := b.AddQuote(q(59, 500, 3)); len(got) != 0 {
		t.Fatalf("a late trade closed %+v", got)
	}
	if c, ok := b.CurrentStamped(quotehub.Minute1); ok {
		t.Fatalf("a late trade opened its ended period again: %+v", c)
	}
	b.AddQuote(q(61, 102, 4))
	if c, ok := b.CurrentStamped(quotehub.Minute1); !ok || c.T != base.Add(time.Minute).UnixMilli() || c.Open != 102 || c.Seq != 4 {
		t.Fatalf("next minute = %+v", c)
	}
}
