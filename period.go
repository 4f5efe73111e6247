package quotehub

import "time"

// Period is a half-open span of time [Start, End): a session, or the span
// one candle covers.
type Period struct {
	Start, End time.Time
}

// Contains reports whether t is in [Start, End).
func (p Period) Contains(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End) }

// IsZero reports whether p is the zero Period.
func (p Period) IsZero() bool { return p.Start.IsZero() && p.End.IsZero() }

// How candles are cut, in the market's own time:
//
//   - Intraday intervals (1m 5m 15m 1h) are cut inside each session from
//     its open: KRX hours start at 09:00, 10:00, …; NYSE hours at 09:30,
//     10:30, …, and the last one of a session ends at the close (15:30 on
//     KRX, 13:00 on a NYSE half day). Nothing is cut outside sessions.
//   - A day (1d) is the session of a trading day; for Upbit, 00:00–24:00 UTC.
//   - A week (1w) is an ISO week (Monday to Sunday in the market's time),
//     from the open of its first trading day to the close of its last, so
//     it ends when its last session does. A month (1M) likewise.
//
// Weeks and months with no trading day have no period. A period's start is
// the candle's time ("t" on the wire); its end is when the candle is final.

// Period returns the period of interval iv that contains t; ok is false
// when t falls outside every period of iv (the market is closed at t), or
// iv is not valid.
func (c *Calendar) Period(t time.Time, iv Interval) (p Period, ok bool) {
	d := civilOf(t.In(c.loc))
	switch {
	case iv.Intraday():
		s, ok := c.sessionOn(d)
		if !ok || !s.Contains(t) {
			return Period{}, false
		}
		return c.cut(s, t, iv), true
	case iv == Day1:
		s, ok := c.sessionOn(d)
		if !ok || !s.Contains(t) {
			return Period{}, false
		}
		return s, true
	case iv == Week1 || iv == Month1:
		s, ok := c.span(unitOf(d, iv), iv)
		if !ok || !s.Contains(t) {
			return Period{}, false
		}
		return s, true
	}
	return Period{}, false
}

// cut returns the intraday period of session s that contains t.
func (c *Calendar) cut(s Period, t time.Time, iv Interval) Period {
	step := iv.Duration()
	start := s.Start.Add(t.Sub(s.Start) / step * step)
	end := start.Add(step)
	if end.After(s.End) {
		end = s.End
	}
	return Period{Start: start, End: end}
}

// lastOf returns the last intraday period of session s.
func (c *Calendar) lastOf(s Period, iv Interval) Period {
	return c.cut(s, s.End.Add(-time.Nanosecond), iv)
}

// unitOf returns the first date of the week (ISO, Monday) or month of d.
func unitOf(d civil, iv Interval) civil {
	if iv == Week1 {
		return d.addDays(-((int(d.weekday()) + 6) % 7))
	}
	return civil{d.y, d.m, 1}
}

// nextUnit returns the first date of the week or month after the one that
// starts at u.
func nextUnit(u civil, iv Interval) civil {
	if iv == Week1 {
		return u.addDays(7)
	}
	return civilOf(time.Date(u.y, u.m+1, 1, 12, 0, 0, 0, time.UTC))
}

func prevUnit(u civil, iv Interval) civil {
	if iv == Week1 {
		return u.addDays(-7)
	}
	return civilOf(time.Date(u.y, u.m-1, 1, 12, 0, 0, 0, time.UTC))
}

// span returns the period of the week or month starting at u: from the
// open of its first trading day to the close of its last; ok is false when
// no day of it trades.
func (c *Calendar) span(u civil, iv Interval) (Period, bool) {
	end := nextUnit(u, iv)
	var p Period
	found := false
	for d := u; d != end; d = d.addDays(1) {
		s, ok := c.sessionOn(d)
		if !ok {
			continue
		}
		if !found {
			p.Start, found = s.Start, true
		}
		p.End = s.End
	}
	return p, found
}

// Floor returns the period of iv that contains t or, when t is outside
// every period, the last one that ended at or before t: the newest candle
// that exists at t. ok is false only for an invalid iv.
func (c *Calendar) Floor(t time.Time, iv Interval) (Period, bool) {
	if p, ok := c.Period(t, iv); ok || !iv.Valid() {
		return p, ok
	}
	d := civilOf(t.In(c.loc))
	if iv == Week1 || iv == Month1 {
		for u, i := unitOf(d, iv), 0; i < maxGap; u, i = prevUnit(u, iv), i+1 {
			if s, ok := c.span(u, iv); ok && !s.End.After(t) {
				return s, true
			}
		}
		return Period{}, false
	}
	for i := 0; i < maxGap; i++ {
		s, ok := c.sessionOn(d.addDays(-i))
		if !ok || s.End.After(t) {
			continue
		}
		if iv == Day1 {
			return s, true
		}
		return c.lastOf(s, iv), true
	}
	return Period{}, false
}

// Ceil returns the first period of iv that starts at or after t. ok is
// false only for an invalid iv.
func (c *Calendar) Ceil(t time.Time, iv Interval) (Period, bool) {
	if !iv.Valid() {
		return Period{}, false
	}
	d := civilOf(t.In(c.loc))
	if iv == Week1 || iv == Month1 {
		for u, i := unitOf(d, iv), 0; i < maxGap; u, i = nextUnit(u, iv), i+1 {
			if s, ok := c.span(u, iv); ok && !s.Start.Before(t) {
				return s, true
			}
		}
		return Period{}, false
	}
	if iv.Intraday() {
		if p, ok := c.Period(t, iv); ok {
			if p.Start.Equal(t) {
				return p, true
			}
			if s, _ := c.sessionOn(d); p.End.Before(s.End) {
				return c.cut(s, p.End, iv), true
			}
		}
	}
	for i := 0; i < maxGap; i++ {
		s, ok := c.sessionOn(d.addDays(i))
		if !ok || s.Start.Before(t) {
			continue
		}
		if iv == Day1 {
			return s, true
		}
		return c.cut(s, s.Start, iv), true
	}
	return Period{}, false
}

// Next returns the period of iv that follows p (a period of iv).
func (c *Calendar) Next(p Period, iv Interval) Period {
	n, _ := c.Ceil(p.End, iv)
	return n
}

// Prev returns the period of iv that precedes p (a period of iv).
func (c *Calendar) Prev(p Period, iv Interval) Period {
	n, _ := c.Floor(p.Start.Add(-time.Nanosecond), iv)
	return n
}
