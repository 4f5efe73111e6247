package quotehub

import (
	"time"
	_ "time/tzdata" // market calendars must work on machines without zoneinfo
)

// Exchanges known to the market calendar.
const (
	ExchangeKRX    = "KRX"    // Korea Exchange (KOSPI, KOSDAQ)
	ExchangeNYSE   = "NYSE"   // New York Stock Exchange
	ExchangeNASDAQ = "NASDAQ" // Nasdaq
	ExchangeUpbit  = "UPBIT"  // Upbit crypto exchange: always open
)

// Calendar is a market's trading calendar: its time zone, its regular
// session, weekends, the holidays and special sessions pinned in
// holidays.go, and from those the periods candles are cut into (period.go).
// An always-open market (Upbit) has one session per UTC day, from 00:00 to
// 24:00, as Upbit cuts its day candles. A Calendar is immutable and safe
// for concurrent use.
type Calendar struct {
	name     string
	loc      *time.Location
	regular  hours
	weekends bool // closed on Saturdays and Sundays
	holidays map[civil]string
	special  map[civil]hours
	always   bool
}

// hours is a session in minutes after local midnight: [open, close).
type hours struct{ open, close int }

// civil is a date on a market's wall calendar.
type civil struct {
	y int
	m time.Month
	d int
}

func civilOf(t time.Time) civil {
	y, m, d := t.Date()
	return civil{y, m, d}
}

// addDays returns the date n days after c (n may be negative).
func (c civil) addDays(n int) civil {
	return civilOf(time.Date(c.y, c.m, c.d+n, 12, 0, 0, 0, time.UTC))
}

func (c civil) weekday() time.Weekday {
	return time.Date(c.y, c.m, c.d, 12, 0, 0, 0, time.UTC).Weekday()
}

// at returns the instant of minute m after midnight of c in loc. Sessions
// never start or end in an hour skipped or repeated by daylight saving, so
// the wall time is unambiguous.
func (c civil) at(m int, loc *time.Location) time.Time {
	return time.Date(c.y, c.m, c.d, 0, m, 0, 0, loc)
}

var (
	seoul   = mustLoad("Asia/Seoul")
	newYork = mustLoad("America/New_York")

	krx = &Calendar{name: ExchangeKRX, loc: seoul, regular: hours{9 * 60, 15*60 + 30},
		weekends: true, holidays: krxHolidays, special: krxSpecial}
	nyse = &Calendar{name: ExchangeNYSE, loc: newYork, regular: hours{9*60 + 30, 16 * 60},
		weekends: true, holidays: nyseHolidays, special: nyseSpecial}
	always = &Calendar{name: ExchangeUpbit, loc: time.UTC, regular: hours{0, 24 * 60}, always: true}
)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is embedded, so this cannot happen
	}
	return loc
}

// CalendarOf returns the calendar of an exchange. Unknown exchanges are
// treated as always open, so their symbols are refreshed rather than frozen.
func CalendarOf(exchange string) *Calendar {
	switch exchange {
	case ExchangeKRX:
		return krx
	case ExchangeNYSE, ExchangeNASDAQ:
		return nyse
	default:
		return always
	}
}

// Name names the calendar ("KRX", "NYSE", "UPBIT"); Nasdaq shares NYSE's.
func (c *Calendar) Name() string { return c.name }

// Location is the market's time zone (UTC for an always-open market).
func (c *Calendar) Location() *time.Location { return c.loc }

// Holiday returns the name of the holiday on the market's local date of t,
// or "" when that date is not a (pinned) holiday.
func (c *Calendar) Holiday(t time.Time) string { return c.holidays[civilOf(t.In(c.loc))] }

// hoursOn returns the session hours of a local date; ok is false on a
// weekend or holiday.
func (c *Calendar) hoursOn(d civil) (h hours, ok bool) {
	if c.always {
		return c.regular, true
	}
	if wd := d.weekday(); c.weekends && (wd == time.Saturday || wd == time.Sunday) {
		return hours{}, false
	}
	if _, closed := c.holidays[d]; closed {
		return hours{}, false
	}
	if h, ok := c.special[d]; ok {
		return h, true
	}
	return c.regular, true
}

// sessionOn returns the session of a local date as a Period.
func (c *Calendar) sessionOn(d civil) (Period, bool) {
	h, ok := c.hoursOn(d)
	if !ok {
		return Period{}, false
	}
	return Period{Start: d.at(h.open, c.loc), End: d.at(h.close, c.loc)}, true
}

// Session returns the regular session [open, close) of the market's local
// date of t (on a half day it closes early; on the first KRX day of a
// year it opens late); ok is false when that date does not trade.
func (c *Calendar) Session(t time.Time) (Period, bool) {
	return c.sessionOn(civilOf(t.In(c.loc)))
}

// IsOpen reports whether the regular session is open at t. Holidays and
// special sessions count for the years pinned in holidays.go.
func (c *Calendar) IsOpen(t time.Time) bool {
	s, ok := c.Session(t)
	return ok && s.Contains(t)
}

// State returns MarketOpen or MarketClosed for t.
func (c *Calendar) State(t time.Time) string {
	if c.IsOpen(t) {
		return MarketOpen
	}
	return MarketClosed
}

// LastClose returns the end of the most recent regular session that ended
// at or before t (t itself for an always-open market).
func (c *Calendar) LastClose(t time.Time) time.Time {
	if c.always {
		return t
	}
	d := civilOf(t.In(c.loc))
	for i := 0; i < maxGap; i++ {
		if s, ok := c.sessionOn(d.addDays(-i)); ok && !s.End.After(t) {
			return s.End
		}
	}
	return t
}

// maxGap bounds the search for a trading day: no market closes for longer
// than this many days in a row (Seollal with a weekend and a substitute
// holiday is six).
const maxGap = 20
