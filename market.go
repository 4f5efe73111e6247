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

// Calendar says when an exchange's regular session is open. It knows
// weekends and session hours, not public holidays: on a holiday a stock
// market counts as open and its price simply does not move.
type Calendar struct {
	loc         *time.Location
	open, close int // minutes after local midnight
	always      bool
}

var (
	seoul   = mustLoad("Asia/Seoul")
	newYork = mustLoad("America/New_York")

	krx    = &Calendar{loc: seoul, open: 9 * 60, close: 15*60 + 30}
	nyse   = &Calendar{loc: newYork, open: 9*60 + 30, close: 16 * 60}
	always = &Calendar{always: true}
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

// IsOpen reports whether the regular session is open at t.
func (c *Calendar) IsOpen(t time.Time) bool {
	if c.always {
		return true
	}
	lt := t.In(c.loc)
	if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	return m >= c.open && m < c.close
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
	lt := t.In(c.loc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, c.loc)
	for i := 0; i < 8; i++ {
		d := day.AddDate(0, 0, -i)
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		end := d.Add(time.Duration(c.close) * time.Minute)
		if !end.After(t) {
			return end
		}
	}
	return t
}
