package history

import (
	"time"

	"quotehub"
)

// A chunk is the unit the cache stores: the candles of one series whose
// periods start within one span of the market's wall calendar, named by
// that span: minute candles by hour (2026-12-03T06), 5- and 15-minute
// candles by day (2026-12-03), hour and day candles by month (2026-12),
// week and month candles by year (2026). Spans are in the market's time
// zone (UTC for Upbit). Once the last period starting in a chunk has
// ended, the chunk's content is final.
type chunk struct {
	key   string
	span  quotehub.Period // the wall-calendar span
	label string
}

// spanUnit is the wall-calendar unit of the chunks of iv.
type spanUnit int

const (
	byHour spanUnit = iota
	byDay
	byMonth
	byYear
)

func unitOf(iv quotehub.Interval) spanUnit {
	switch iv {
	case quotehub.Minute1:
		return byHour
	case quotehub.Minute5, quotehub.Minute15:
		return byDay
	case quotehub.Hour1, quotehub.Day1:
		return byMonth
	}
	return byYear
}

// ChunkKey returns the cache key of the chunk of s that holds the period
// starting at t, e.g. "candles:{KRW-BTC}:1m:2026-12-03T06". The symbol is
// a hash tag, so a symbol's chunks share a Redis Cluster slot.
func ChunkKey(cal *quotehub.Calendar, s quotehub.CandleSeries, t time.Time) string {
	return chunkAt(cal, s, t).key
}

func chunkAt(cal *quotehub.Calendar, s quotehub.CandleSeries, t time.Time) chunk {
	lt := t.In(cal.Location())
	y, m, d := lt.Date()
	loc := cal.Location()
	var c chunk
	switch unitOf(s.Interval) {
	case byHour:
		c.span.Start = time.Date(y, m, d, lt.Hour(), 0, 0, 0, loc)
		c.span.End = c.span.Start.Add(time.Hour)
		c.label = c.span.Start.Format("2006-01-02T15")
	case byDay:
		c.span.Start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		c.span.End = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
		c.label = c.span.Start.Format("2006-01-02")
	case byMonth:
		c.span.Start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		c.span.End = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
		c.label = c.span.Start.Format("2006-01")
	default:
		c.span.Start = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		c.span.End = time.Date(y+1, 1, 1, 0, 0, 0, 0, loc)
		c.label = c.span.Start.Format("2006")
	}
	c.key = "candles:{" + s.Symbol + "}:" + s.Interval.String() + ":" + c.label
	return c
}

// prev returns the chunk before c.
func (c chunk) prev(cal *quotehub.Calendar, s quotehub.CandleSeries) chunk {
	return chunkAt(cal, s, c.span.Start.Add(-time.Nanosecond))
}

// last returns the last period that starts in c; ok is false when no
// period starts in it (a weekend's hours, a holiday's day).
func (c chunk) last(cal *quotehub.Calendar, iv quotehub.Interval) (quotehub.Period, bool) {
	p, ok := cal.Floor(c.span.End.Add(-time.Nanosecond), iv)
	if !ok || p.Start.Before(c.span.Start) {
		return quotehub.Period{}, false
	}
	return p, true
}

// periods counts the periods that start in c.
func (c chunk) periods(cal *quotehub.Calendar, iv quotehub.Interval) int {
	n := 0
	for p, ok := cal.Ceil(c.span.Start, iv); ok && p.Start.Before(c.span.End); p = cal.Next(p, iv) {
		n++
	}
	return n
}

// expiry is when the cached closed candles of c stop being the whole truth
// at now: for a final chunk, now plus keep (closed chunks are kept long);
// for the current chunk, the end of the period open at now (or the next
// one to open), when the next candle closes, plus grace. The grace lets
// the closing candle reach the upstream before the chunk is read again.
func (c chunk) expiry(cal *quotehub.Calendar, iv quotehub.Interval, now time.Time, keep, grace time.Duration) (time.Time, bool) {
	last, ok := c.last(cal, iv)
	if !ok || !now.Before(last.End) {
		return now.Add(keep), true
	}
	p, ok := cal.Period(now, iv)
	if !ok {
		p, _ = cal.Ceil(now, iv)
	}
	return p.End.Add(grace), false
}
