package quotehub_test

import (
	"testing"
	"time"

	"quotehub"
)

var (
	seoulLoc, _ = time.LoadLocation("Asia/Seoul")
	nyLoc, _    = time.LoadLocation("America/New_York")
)

// at builds a wall time in loc: at(loc, "2026-12-30 15:29").
func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIntervalParse(t *testing.T) {
	for _, iv := range quotehub.Intervals {
		got, err := quotehub.ParseInterval(iv.String())
		if err != nil || got != iv {
			t.Errorf("ParseInterval(%q) = %v, %v", iv.String(), got, err)
		}
	}
	for _, bad := range []string{"", "1", "2m", "1H", "1D", "1W", "60m", "1min", " 1m"} {
		_, err := quotehub.ParseInterval(bad)
		if quotehub.ErrorCode(err) != quotehub.EBadRequest {
			t.Errorf("ParseInterval(%q) err = %v, want bad_request", bad, err)
		}
	}
	if quotehub.Interval(0).String() != "" || quotehub.Interval(99).Valid() {
		t.Error("invalid intervals must have no name")
	}
}

// TestCalendarPeriods pins every edge the candles depend on.
func TestCalendarPeriods(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	upbit := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	S, N, U := seoulLoc, nyLoc, time.UTC

	tests := []struct {
		name       string
		cal        *quotehub.Calendar
		iv         quotehub.Interval
		at         time.Time
		ok         bool
		start, end time.Time // the period when ok
	}{
		// The minute the market opens and closes.
		{"KRX 08:59 has no minute", krx, quotehub.Minute1, at(t, S, "2026-12-03 08:59"), false, time.Time{}, time.Time{}},
		{"KRX 09:00 opens the first minute", krx, quotehub.Minute1, at(t, S, "2026-12-03 09:00"), true, at(t, S, "2026-12-03 09:00"), at(t, S, "2026-12-03 09:01")},
		{"KRX 15:29 is the last minute", krx, quotehub.Minute1, at(t, S, "2026-12-03 15:29"), true, at(t, S, "2026-12-03 15:29"), at(t, S, "2026-12-03 15:30")},
		{"KRX 15:30 is closed", krx, quotehub.Minute1, at(t, S, "2026-12-03 15:30"), false, time.Time{}, time.Time{}},
		{"KRX last hour is cut at the close", krx, quotehub.Hour1, at(t, S, "2026-12-03 15:10"), true, at(t, S, "2026-12-03 15:00"), at(t, S, "2026-12-03 15:30")},
		{"KRX 15m inside the session", krx, quotehub.Minute15, at(t, S, "2026-12-03 10:29"), true, at(t, S, "2026-12-03 10:15"), at(t, S, "2026-12-03 10:30")},
		{"KRX day is the session", krx, quotehub.Day1, at(t, S, "2026-12-03 12:00"), true, at(t, S, "2026-12-03 09:00"), at(t, S, "2026-12-03 15:30")},
		{"KRX evening is outside the day", krx, quotehub.Day1, at(t, S, "2026-12-03 18:00"), false, time.Time{}, time.Time{}},
		{"KRX first day of 2027 opens at 10:00", krx, quotehub.Hour1, at(t, S, "2027-01-04 10:00"), true, at(t, S, "2027-01-04 10:00"), at(t, S, "2027-01-04 11:00")},
		{"KRX first day of 2027 is closed at 09:30", krx, quotehub.Minute1, at(t, S, "2027-01-04 09:30"), false, time.Time{}, time.Time{}},
		{"KRX exam day trades to 16:30", krx, quotehub.Minute5, at(t, S, "2026-11-19 16:25"), true, at(t, S, "2026-11-19 16:25"), at(t, S, "2026-11-19 16:30")},
		{"NYSE 09:30 opens the first hour", nyse, quotehub.Hour1, at(t, N, "2026-12-03 09:30"), true, at(t, N, "2026-12-03 09:30"), at(t, N, "2026-12-03 10:30")},
		{"NYSE last hour runs 15:30-16:00", nyse, quotehub.Hour1, at(t, N, "2026-12-03 15:59"), true, at(t, N, "2026-12-03 15:30"), at(t, N, "2026-12-03 16:00")},
		{"NYSE 16:00 is closed", nyse, quotehub.Minute1, at(t, N, "2026-12-03 16:00"), false, time.Time{}, time.Time{}},

		// Holidays.
		{"KRX election day has no day", krx, quotehub.Day1, at(t, S, "2026-06-03 12:00"), false, time.Time{}, time.Time{}},
		{"KRX Dec 31 has no minute", krx, quotehub.Minute1, at(t, S, "2026-12-31 10:00"), false, time.Time{}, time.Time{}},
		{"NYSE Good Friday has no hour", nyse, quotehub.Hour1, at(t, N, "2026-04-03 11:00"), false, time.Time{}, time.Time{}},

		// A half day.
		{"NYSE day after Thanksgiving closes at 13:00", nyse, quotehub.Day1, at(t, N, "2026-11-27 12:00"), true, at(t, N, "2026-11-27 09:30"), at(t, N, "2026-11-27 13:00")},
		{"NYSE half day's last hour is cut at 13:00", nyse, quotehub.Hour1, at(t, N, "2026-11-27 12:45"), true, at(t, N, "2026-11-27 12:30"), at(t, N, "2026-11-27 13:00")},
		{"NYSE half day is closed at 13:00", nyse, quotehub.Minute1, at(t, N, "2026-11-27 13:00"), false, time.Time{}, time.Time{}},
		{"NYSE Christmas Eve 2026 closes at 13:00", nyse, quotehub.Minute15, at(t, N, "2026-12-24 12:59"), true, at(t, N, "2026-12-24 12:45"), at(t, N, "2026-12-24 13:00")},

		// Daylight saving in New York (2026-03-08 forward, 2026-11-01 back).
		{"NYSE Friday before spring forward is 14:30Z-21:00Z", nyse, quotehub.Day1, at(t, U, "2026-03-06 15:00"), true, at(t, U, "2026-03-06 14:30"), at(t, U, "2026-03-06 21:00")},
		{"NYSE Monday after spring forward is 13:30Z-20:00Z", nyse, quotehub.Day1, at(t, U, "2026-03-09 15:00"), true, at(t, U, "2026-03-09 13:30"), at(t, U, "2026-03-09 20:00")},
		{"NYSE 13:30Z is closed before spring forward", nyse, quotehub.Minute1, at(t, U, "2026-03-06 13:30"), false, time.Time{}, time.Time{}},
		{"NYSE first hour after spring forward", nyse, quotehub.Hour1, at(t, U, "2026-03-09 13:45"), true, at(t, U, "2026-03-09 13:30"), at(t, U, "2026-03-09 14:30")},
		{"NYSE Friday before fall back is 13:30Z-20:00Z", nyse, quotehub.Day1, at(t, U, "2026-10-30 15:00"), true, at(t, U, "2026-10-30 13:30"), at(t, U, "2026-10-30 20:00")},
		{"NYSE Monday after fall back is 14:30Z-21:00Z", nyse, quotehub.Day1, at(t, U, "2026-11-02 15:00"), true, at(t, U, "2026-11-02 14:30"), at(t, U, "2026-11-02 21:00")},
		{"NYSE 20:30Z is open after fall back", nyse, quotehub.Minute1, at(t, U, "2026-11-02 20:30"), true, at(t, U, "2026-11-02 20:30"), at(t, U, "2026-11-02 20:31")},
		{"NYSE week ending with spring forward (overnight is inside the week)", nyse, quotehub.Week1, at(t, U, "2026-03-04 03:00"), true, at(t, U, "2026-03-02 14:30"), at(t, U, "2026-03-06 21:00")},
		{"NYSE Sunday of a week is after its last close", nyse, quotehub.Week1, at(t, U, "2026-03-08 12:00"), false, time.Time{}, time.Time{}},

		// Dec 31 → Jan 1, and ISO weeks.
		{"Upbit Dec 31 is a UTC day", upbit, quotehub.Day1, at(t, U, "2026-12-31 23:59"), true, at(t, U, "2026-12-31 00:00"), at(t, U, "2027-01-01 00:00")},
		{"Upbit Jan 1 is a UTC day", upbit, quotehub.Day1, at(t, U, "2027-01-01 00:00"), true, at(t, U, "2027-01-01 00:00"), at(t, U, "2027-01-02 00:00")},
		{"Upbit day starts 09:00 in Seoul", upbit, quotehub.Day1, at(t, S, "2026-12-04 08:59"), true, at(t, U, "2026-12-03 00:00"), at(t, U, "2026-12-04 00:00")},
		{"Upbit last hour of the year", upbit, quotehub.Hour1, at(t, U, "2026-12-31 23:30"), true, at(t, U, "2026-12-31 23:00"), at(t, U, "2027-01-01 00:00")},
		{"Upbit ISO week 53 of 2026 spans the new year", upbit, quotehub.Week1, at(t, U, "2027-01-01 12:00"), true, at(t, U, "2026-12-28 00:00"), at(t, U, "2027-01-04 00:00")},
		{"KRX ISO week 53 ends Dec 30 (Dec 31, Jan 1 closed)", krx, quotehub.Week1, at(t, S, "2026-12-29 10:00"), true, at(t, S, "2026-12-28 09:00"), at(t, S, "2026-12-30 15:30")},
		{"NYSE ISO week 53 ends Dec 31", nyse, quotehub.Week1, at(t, N, "2026-12-31 15:59"), true, at(t, N, "2026-12-28 09:30"), at(t, N, "2026-12-31 16:00")},
		{"Upbit week 1 of 2026 starts on Dec 29, 2025", upbit, quotehub.Week1, at(t, U, "2026-01-01 00:00"), true, at(t, U, "2025-12-29 00:00"), at(t, U, "2026-01-05 00:00")},
		{"NYSE week 1 of 2026 starts in December", nyse, quotehub.Week1, at(t, N, "2026-01-02 10:00"), true, at(t, N, "2025-12-29 09:30"), at(t, N, "2026-01-02 16:00")},
		{"NYSE New Year's Day is outside its week", nyse, quotehub.Week1, at(t, N, "2026-01-01 10:00"), true, at(t, N, "2025-12-29 09:30"), at(t, N, "2026-01-02 16:00")},

		// Months, month ends and Feb 29.
		{"KRX December 2026 ends Dec 30", krx, quotehub.Month1, at(t, S, "2026-12-03 10:00"), true, at(t, S, "2026-12-01 09:00"), at(t, S, "2026-12-30 15:30")},
		{"KRX May 2026 starts May 4 (May 1 Labor Day, weekend)", krx, quotehub.Month1, at(t, S, "2026-05-04 09:00"), true, at(t, S, "2026-05-04 09:00"), at(t, S, "2026-05-29 15:30")},
		{"Upbit February 2026", upbit, quotehub.Month1, at(t, U, "2026-02-28 23:59"), true, at(t, U, "2026-02-01 00:00"), at(t, U, "2026-03-01 00:00")},
		{"Upbit Feb 29, 2028", upbit, quotehub.Day1, at(t, U, "2028-02-29 12:00"), true, at(t, U, "2028-02-29 00:00"), at(t, U, "2028-03-01 00:00")},
		{"Upbit February 2028 has 29 days", upbit, quotehub.Month1, at(t, U, "2028-02-29 23:59"), true, at(t, U, "2028-02-01 00:00"), at(t, U, "2028-03-01 00:00")},
		{"NYSE February 2028 ends on the 29th", nyse, quotehub.Month1, at(t, N, "2028-02-29 12:00"), true, at(t, N, "2028-02-01 09:30"), at(t, N, "2028-02-29 16:00")},
		{"NYSE month before the close of its last day", nyse, quotehub.Month1, at(t, N, "2026-04-30 15:59"), true, at(t, N, "2026-04-01 09:30"), at(t, N, "2026-04-30 16:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tt.cal.Period(tt.at, tt.iv)
			if ok != tt.ok {
				t.Fatalf("Period(%v, %v) ok = %v, want %v (%v)", tt.at, tt.iv, ok, tt.ok, p)
			}
			if ok && (!p.Start.Equal(tt.start) || !p.End.Equal(tt.end)) {
				t.Fatalf("Period(%v, %v) = [%v, %v), want [%v, %v)", tt.at, tt.iv, p.Start, p.End, tt.start, tt.end)
			}
		})
	}
}

// TestCalendarNextPrev pins the steps over closures, year ends and DST.
func TestCalendarNextPrev(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	upbit := quotehub.CalendarOf(quotehub.ExchangeUpbit)
	S, N, U := seoulLoc, nyLoc, time.UTC
	tests := []struct {
		name            string
		cal             *quotehub.Calendar
		iv              quotehub.Interval
		from            time.Time // inside the first period
		nextStart, next time.Time
	}{
		{"KRX Dec 30 → Jan 4, 10:00 (Dec 31, Jan 1, weekend)", krx, quotehub.Day1, at(t, S, "2026-12-30 12:00"), at(t, S, "2027-01-04 10:00"), at(t, S, "2027-01-04 15:30")},
		{"KRX last minute of 2026 → first minute of 2027", krx, quotehub.Minute1, at(t, S, "2026-12-30 15:29"), at(t, S, "2027-01-04 10:00"), at(t, S, "2027-01-04 10:01")},
		{"NYSE Dec 31 → Jan 4 (New Year's Day Friday)", nyse, quotehub.Day1, at(t, N, "2026-12-31 12:00"), at(t, N, "2027-01-04 09:30"), at(t, N, "2027-01-04 16:00")},
		{"Upbit Dec 31 → Jan 1", upbit, quotehub.Day1, at(t, U, "2026-12-31 12:00"), at(t, U, "2027-01-01 00:00"), at(t, U, "2027-01-02 00:00")},
		{"Upbit last minute of the year → first", upbit, quotehub.Minute1, at(t, U, "2026-12-31 23:59"), at(t, U, "2027-01-01 00:00"), at(t, U, "2027-01-01 00:01")},
		{"KRX week 53 → week 1 of 2027", krx, quotehub.Week1, at(t, S, "2026-12-28 10:00"), at(t, S, "2027-01-04 10:00"), at(t, S, "2027-01-08 15:30")},
		{"KRX December → January", krx, quotehub.Month1, at(t, S, "2026-12-15 10:00"), at(t, S, "2027-01-04 10:00"), at(t, S, "2027-01-29 15:30")},
		{"KRX before election day → after", krx, quotehub.Day1, at(t, S, "2026-06-02 10:00"), at(t, S, "2026-06-04 09:00"), at(t, S, "2026-06-04 15:30")},
		{"KRX Seollal: Feb 13 → Feb 19", krx, quotehub.Day1, at(t, S, "2026-02-13 10:00"), at(t, S, "2026-02-19 09:00"), at(t, S, "2026-02-19 15:30")},
		{"NYSE half day's last hour → Monday's first", nyse, quotehub.Hour1, at(t, N, "2026-11-27 12:30"), at(t, N, "2026-11-30 09:30"), at(t, N, "2026-11-30 10:30")},
		{"NYSE Wednesday → half day over Thanksgiving", nyse, quotehub.Day1, at(t, N, "2026-11-25 12:00"), at(t, N, "2026-11-27 09:30"), at(t, N, "2026-11-27 13:00")},
		{"NYSE across spring forward", nyse, quotehub.Hour1, at(t, U, "2026-03-06 20:45"), at(t, U, "2026-03-09 13:30"), at(t, U, "2026-03-09 14:30")},
		{"NYSE across fall back", nyse, quotehub.Hour1, at(t, U, "2026-10-30 19:45"), at(t, U, "2026-11-02 14:30"), at(t, U, "2026-11-02 15:30")},
		{"Upbit January 2028 → leap February", upbit, quotehub.Month1, at(t, U, "2028-01-31 23:59"), at(t, U, "2028-02-01 00:00"), at(t, U, "2028-03-01 00:00")},
		{"Upbit Feb 28, 2028 → Feb 29", upbit, quotehub.Day1, at(t, U, "2028-02-28 12:00"), at(t, U, "2028-02-29 00:00"), at(t, U, "2028-03-01 00:00")},
		{"Upbit month end → month start", upbit, quotehub.Month1, at(t, U, "2026-04-30 23:59"), at(t, U, "2026-05-01 00:00"), at(t, U, "2026-06-01 00:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tt.cal.Period(tt.from, tt.iv)
			if !ok {
				t.Fatalf("Period(%v, %v): no period", tt.from, tt.iv)
			}
			n := tt.cal.Next(p, tt.iv)
			if !n.Start.Equal(tt.nextStart) || !n.End.Equal(tt.next) {
				t.Fatalf("Next = [%v, %v), want [%v, %v)", n.Start, n.End, tt.nextStart, tt.next)
			}
			if back := tt.cal.Prev(n, tt.iv); back != p {
				t.Fatalf("Prev(Next(p)) = [%v, %v), want [%v, %v)", back.Start, back.End, p.Start, p.End)
			}
		})
	}
}

// TestCalendarFloorCeil: the newest candle at an instant when closed.
func TestCalendarFloorCeil(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	nyse := quotehub.CalendarOf(quotehub.ExchangeNYSE)
	S, N := seoulLoc, nyLoc
	tests := []struct {
		name       string
		cal        *quotehub.Calendar
		iv         quotehub.Interval
		at         time.Time
		floorStart time.Time
		ceilStart  time.Time
	}{
		{"KRX 15:30 floors to 15:29", krx, quotehub.Minute1, at(t, S, "2026-12-03 15:30"), at(t, S, "2026-12-03 15:29"), at(t, S, "2026-12-04 09:00")},
		{"KRX night floors to the day", krx, quotehub.Day1, at(t, S, "2026-12-03 20:00"), at(t, S, "2026-12-03 09:00"), at(t, S, "2026-12-04 09:00")},
		{"KRX morning before the open floors to yesterday", krx, quotehub.Hour1, at(t, S, "2026-12-04 08:00"), at(t, S, "2026-12-03 15:00"), at(t, S, "2026-12-04 09:00")},
		{"KRX Dec 31 floors to Dec 30", krx, quotehub.Day1, at(t, S, "2026-12-31 12:00"), at(t, S, "2026-12-30 09:00"), at(t, S, "2027-01-04 10:00")},
		{"KRX Sunday of week 53 floors to week 53", krx, quotehub.Week1, at(t, S, "2027-01-03 12:00"), at(t, S, "2026-12-28 09:00"), at(t, S, "2027-01-04 10:00")},
		{"NYSE half-day afternoon floors to 12:30", nyse, quotehub.Hour1, at(t, N, "2026-11-27 14:00"), at(t, N, "2026-11-27 12:30"), at(t, N, "2026-11-30 09:30")},
		{"NYSE in a session ceils to the next boundary", nyse, quotehub.Minute15, at(t, N, "2026-12-03 10:07"), at(t, N, "2026-12-03 10:00"), at(t, N, "2026-12-03 10:15")},
		{"NYSE at a boundary ceils to itself", nyse, quotehub.Minute5, at(t, N, "2026-12-03 10:05"), at(t, N, "2026-12-03 10:05"), at(t, N, "2026-12-03 10:05")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := tt.cal.Floor(tt.at, tt.iv)
			if !ok || !f.Start.Equal(tt.floorStart) {
				t.Errorf("Floor = %v (%v), want start %v", f.Start, ok, tt.floorStart)
			}
			if f.Start.After(tt.at) {
				t.Errorf("Floor starts after t")
			}
			c, ok := tt.cal.Ceil(tt.at, tt.iv)
			if !ok || !c.Start.Equal(tt.ceilStart) {
				t.Errorf("Ceil = %v (%v), want start %v", c.Start, ok, tt.ceilStart)
			}
		})
	}
}

// TestCalendarWalk steps through two years of every calendar and interval:
// periods follow each other without gaps or overlaps inside sessions, Prev
// undoes Next, and every instant of a session lies in exactly the period
// Period names.
func TestCalendarWalk(t *testing.T) {
	from := time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC)
	to := time.Date(2028, 1, 10, 0, 0, 0, 0, time.UTC)
	for _, ex := range []string{quotehub.ExchangeKRX, quotehub.ExchangeNYSE, quotehub.ExchangeUpbit} {
		cal := quotehub.CalendarOf(ex)
		for _, iv := range quotehub.Intervals {
			if iv == quotehub.Minute1 || iv == quotehub.Minute5 {
				continue // the same code as 15m, at 15 times the steps
			}
			t.Run(ex+"/"+iv.String(), func(t *testing.T) {
				p, ok := cal.Ceil(from, iv)
				if !ok {
					t.Fatal("no first period")
				}
				for p.Start.Before(to) {
					if !p.Start.Before(p.End) {
						t.Fatalf("empty period %v", p)
					}
					if q, ok := cal.Period(p.Start, iv); !ok || q != p {
						t.Fatalf("Period(start of %v) = %v %v", p, q, ok)
					}
					if q, ok := cal.Period(p.End.Add(-time.Nanosecond), iv); !ok || q != p {
						t.Fatalf("Period(end of %v) = %v %v", p, q, ok)
					}
					if !cal.IsOpen(p.Start) || !cal.IsOpen(p.End.Add(-time.Nanosecond)) {
						t.Fatalf("%v starts or ends outside a session", p)
					}
					n := cal.Next(p, iv)
					if n.Start.Before(p.End) {
						t.Fatalf("Next(%v) = %v overlaps", p, n)
					}
					if back := cal.Prev(n, iv); back != p {
						t.Fatalf("Prev(Next(%v)) = %v", p, back)
					}
					p = n
				}
			})
		}
	}
}

// TestHolidayLists keeps the pinned lists honest: every holiday and special
// session falls on a weekday, and no day is both.
func TestHolidayLists(t *testing.T) {
	for _, ex := range []string{quotehub.ExchangeKRX, quotehub.ExchangeNYSE} {
		cal := quotehub.CalendarOf(ex)
		n := 0
		for d := time.Date(2026, 1, 1, 12, 0, 0, 0, cal.Location()); d.Year() < 2028; d = d.AddDate(0, 0, 1) {
			if cal.Holiday(d) == "" {
				continue
			}
			n++
			if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
				t.Errorf("%s holiday %s falls on a %s", ex, d.Format("2006-01-02"), wd)
			}
			if _, ok := cal.Session(d); ok {
				t.Errorf("%s holiday %s has a session", ex, d.Format("2006-01-02"))
			}
		}
		if n < 20 {
			t.Errorf("%s: %d holidays pinned in 2026-2027, want at least 20", ex, n)
		}
	}
	if got := quotehub.CalendarOf(quotehub.ExchangeKRX).Holiday(at(t, seoulLoc, "2026-06-03 12:00")); got != "Local elections" {
		t.Errorf("KRX 2026-06-03 = %q", got)
	}
}
