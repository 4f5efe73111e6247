package quotehub

import (
	"strings"
	"time"
)

// Interval is the length of one candle: minutes and an hour cut inside a
// market's sessions, or a trading day, an ISO week or a calendar month of
// the market's own calendar.
type Interval uint8

// Candle intervals. The zero Interval is not valid.
const (
	Minute1 Interval = iota + 1
	Minute5
	Minute15
	Hour1
	Day1
	Week1
	Month1
)

// Intervals lists every valid interval, shortest first.
var Intervals = []Interval{Minute1, Minute5, Minute15, Hour1, Day1, Week1, Month1}

var intervalNames = [...]string{"", "1m", "5m", "15m", "1h", "1d", "1w", "1M"}

// ParseInterval reads an interval in its wire form (1m 5m 15m 1h 1d 1w 1M;
// "1M" is a month, "1m" a minute, so the case matters). Anything else is a
// bad_request error that names the valid forms.
func ParseInterval(s string) (Interval, error) {
	for i, n := range intervalNames {
		if i > 0 && s == n {
			return Interval(i), nil
		}
	}
	return 0, Errorf(EBadRequest, "unknown interval %q: use one of %s", s, strings.Join(intervalNames[1:], ", "))
}

// String returns the wire form of iv ("1m" … "1M"), or "" if iv is not valid.
func (iv Interval) String() string {
	if !iv.Valid() {
		return ""
	}
	return intervalNames[iv]
}

// Valid reports whether iv is one of the defined intervals.
func (iv Interval) Valid() bool { return iv >= Minute1 && iv <= Month1 }

// Intraday reports whether iv is cut inside sessions (minutes and hours).
func (iv Interval) Intraday() bool { return iv >= Minute1 && iv <= Hour1 }

// Duration is the length of an intraday interval; 0 for days, weeks and
// months, whose length depends on the calendar.
func (iv Interval) Duration() time.Duration {
	switch iv {
	case Minute1:
		return time.Minute
	case Minute5:
		return 5 * time.Minute
	case Minute15:
		return 15 * time.Minute
	case Hour1:
		return time.Hour
	}
	return 0
}
