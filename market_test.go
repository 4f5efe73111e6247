package quotehub_test

import (
	"testing"
	"time"

	"quotehub"
)

var (
	kst = time.FixedZone("KST", 9*3600)
	edt = time.FixedZone("EDT", -4*3600)
	est = time.FixedZone("EST", -5*3600)
)

// Dates used below (2025):
//   Mon 11-17 … Fri 11-21, Sat 11-22, Sun 11-23, Mon 11-24 (KRX week)
//   Wed 07-16 (US daylight-saving time, UTC−4), Wed 01-15 (US winter, UTC−5)
//   Sun 03-09 US clocks go forward; Sun 11-02 US clocks go back.

func TestCalendarIsOpen(t *testing.T) {
	tests := []struct {
		name     string
		exchange string
		at       time.Time
		want     bool
	}{
		{"KRX 08:59 is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 8, 59, 0, 0, kst), false},
		{"KRX 08:59:59 is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 8, 59, 59, 0, kst), false},
		{"KRX 09:00 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 9, 0, 0, 0, kst), true},
		{"KRX 12:00 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 12, 0, 0, 0, kst), true},
		{"KRX 15:29 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 15, 29, 0, 0, kst), true},
		{"KRX 15:29:59 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 15, 29, 59, 0, kst), true},
		{"KRX 15:30 is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 15, 30, 0, 0, kst), false},
		{"KRX night is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 23, 0, 0, 0, kst), false},
		{"KRX Monday 09:00 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 17, 9, 0, 0, 0, kst), true},
		{"KRX Friday 15:29 is open", quotehub.ExchangeKRX, time.Date(2025, 11, 21, 15, 29, 0, 0, kst), true},
		{"KRX Saturday noon is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 22, 12, 0, 0, 0, kst), false},
		{"KRX Sunday noon is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 23, 12, 0, 0, 0, kst), false},
		{"KRX open given in UTC is open", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 0, 0, 0, 0, time.UTC), true},
		{"KRX Monday 09:30 given in UTC is open", quotehub.ExchangeKRX, time.Date(2025, 11, 24, 0, 30, 0, 0, time.UTC), true},
		{"KRX Saturday 10:00 given in UTC is closed", quotehub.ExchangeKRX, time.Date(2025, 11, 22, 1, 0, 0, 0, time.UTC), false},

		{"NYSE summer 09:29 is closed", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 13, 29, 0, 0, time.UTC), false},
		{"NYSE summer 09:30 is open", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 13, 30, 0, 0, time.UTC), true},
		{"NYSE summer 15:59 is open", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 19, 59, 0, 0, time.UTC), true},
		{"NYSE summer 16:00 is closed", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 20, 0, 0, 0, time.UTC), false},
		{"NYSE winter 09:29 is closed", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 14, 29, 0, 0, time.UTC), false},
		{"NYSE winter 09:30 is open", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 14, 30, 0, 0, time.UTC), true},
		{"NYSE winter 15:59 is open", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 20, 59, 0, 0, time.UTC), true},
		{"NYSE winter 16:00 is closed", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 21, 0, 0, 0, time.UTC), false},
		{"NYSE 14:00 UTC is open in summer", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 14, 0, 0, 0, time.UTC), true},
		{"NYSE 14:00 UTC is closed in winter", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 14, 0, 0, 0, time.UTC), false},
		{"NYSE 20:30 UTC is closed in summer", quotehub.ExchangeNYSE, time.Date(2025, 7, 16, 20, 30, 0, 0, time.UTC), false},
		{"NYSE 20:30 UTC is open in winter", quotehub.ExchangeNYSE, time.Date(2025, 1, 15, 20, 30, 0, 0, time.UTC), true},
		{"NYSE Monday after clocks go forward opens at 09:30 EDT", quotehub.ExchangeNYSE, time.Date(2025, 3, 10, 9, 30, 0, 0, edt), true},
		{"NYSE Monday after clocks go forward is closed at 09:29 EDT", quotehub.ExchangeNYSE, time.Date(2025, 3, 10, 9, 29, 0, 0, edt), false},
		{"NYSE Monday after clocks go forward is closed at 15:30 EST", quotehub.ExchangeNYSE, time.Date(2025, 3, 10, 15, 30, 0, 0, est), false},
		{"NYSE Saturday is closed", quotehub.ExchangeNYSE, time.Date(2025, 7, 19, 12, 0, 0, 0, edt), false},
		{"NYSE Friday evening that is Saturday in UTC is closed", quotehub.ExchangeNYSE, time.Date(2025, 7, 19, 0, 30, 0, 0, time.UTC), false},
		{"NASDAQ follows NYSE hours when open", quotehub.ExchangeNASDAQ, time.Date(2025, 7, 16, 9, 30, 0, 0, edt), true},
		{"NASDAQ follows NYSE hours when closed", quotehub.ExchangeNASDAQ, time.Date(2025, 7, 16, 16, 0, 0, 0, edt), false},
		{"NASDAQ Sunday is closed", quotehub.ExchangeNASDAQ, time.Date(2025, 7, 20, 12, 0, 0, 0, edt), false},

		{"UPBIT Saturday night is open", quotehub.ExchangeUpbit, time.Date(2025, 11, 22, 3, 0, 0, 0, kst), true},
		{"UPBIT Wednesday 16:00 is open", quotehub.ExchangeUpbit, time.Date(2025, 11, 19, 16, 0, 0, 0, kst), true},
		{"unknown exchange on Sunday is open", "LSE", time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC), true},
		{"empty exchange is open", "", time.Date(2025, 11, 22, 23, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := quotehub.CalendarOf(tt.exchange)
			if got := c.IsOpen(tt.at); got != tt.want {
				t.Errorf("CalendarOf(%q).IsOpen(%v) = %v, want %v", tt.exchange, tt.at, got, tt.want)
			}
			wantState := quotehub.MarketClosed
			if tt.want {
				wantState = quotehub.MarketOpen
			}
			if got := c.State(tt.at); got != wantState {
				t.Errorf("CalendarOf(%q).State(%v) = %q, want %q", tt.exchange, tt.at, got, wantState)
			}
		})
	}
}

func TestCalendarStateStrings(t *testing.T) {
	krx := quotehub.CalendarOf(quotehub.ExchangeKRX)
	if got := krx.State(time.Date(2025, 11, 19, 10, 0, 0, 0, kst)); got != "open" {
		t.Errorf("State during the session = %q, want %q", got, "open")
	}
	if got := krx.State(time.Date(2025, 11, 19, 16, 0, 0, 0, kst)); got != "closed" {
		t.Errorf("State after the session = %q, want %q", got, "closed")
	}
}

func TestCalendarLastClose(t *testing.T) {
	tests := []struct {
		name     string
		exchange string
		at       time.Time
		want     time.Time
	}{
		{"KRX Monday 08:00 gives Friday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 24, 8, 0, 0, 0, kst), time.Date(2025, 11, 21, 15, 30, 0, 0, kst)},
		{"KRX Wednesday 16:00 gives Wednesday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 16, 0, 0, 0, kst), time.Date(2025, 11, 19, 15, 30, 0, 0, kst)},
		{"KRX Wednesday 15:30 gives itself", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 15, 30, 0, 0, kst), time.Date(2025, 11, 19, 15, 30, 0, 0, kst)},
		{"KRX Wednesday 15:29 gives Tuesday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 15, 29, 0, 0, kst), time.Date(2025, 11, 18, 15, 30, 0, 0, kst)},
		{"KRX Wednesday 10:00 gives Tuesday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 10, 0, 0, 0, kst), time.Date(2025, 11, 18, 15, 30, 0, 0, kst)},
		{"KRX Wednesday 00:00 gives Tuesday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 19, 0, 0, 0, 0, kst), time.Date(2025, 11, 18, 15, 30, 0, 0, kst)},
		{"KRX Saturday gives Friday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 22, 12, 0, 0, 0, kst), time.Date(2025, 11, 21, 15, 30, 0, 0, kst)},
		{"KRX Sunday night gives Friday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 23, 23, 59, 0, 0, kst), time.Date(2025, 11, 21, 15, 30, 0, 0, kst)},
		{"KRX Monday morning given in UTC gives Friday 15:30", quotehub.ExchangeKRX, time.Date(2025, 11, 23, 23, 0, 0, 0, time.UTC), time.Date(2025, 11, 21, 15, 30, 0, 0, kst)},
		{"NYSE summer Monday gives Friday 16:00 EDT", quotehub.ExchangeNYSE, time.Date(2025, 7, 14, 10, 0, 0, 0, edt), time.Date(2025, 7, 11, 16, 0, 0, 0, edt)},
		{"NYSE winter Monday gives Friday 16:00 EST", quotehub.ExchangeNYSE, time.Date(2025, 1, 13, 8, 0, 0, 0, est), time.Date(2025, 1, 10, 16, 0, 0, 0, est)},
		{"NYSE winter evening gives the same day", quotehub.ExchangeNASDAQ, time.Date(2025, 1, 15, 23, 0, 0, 0, time.UTC), time.Date(2025, 1, 15, 16, 0, 0, 0, est)},
		{"NYSE Monday after clocks go forward gives Friday 16:00 EST", quotehub.ExchangeNYSE, time.Date(2025, 3, 10, 8, 0, 0, 0, edt), time.Date(2025, 3, 7, 16, 0, 0, 0, est)},
		{"NYSE Monday after clocks go back gives Friday 16:00 EDT", quotehub.ExchangeNYSE, time.Date(2025, 11, 3, 8, 0, 0, 0, est), time.Date(2025, 10, 31, 16, 0, 0, 0, edt)},
		{"NYSE Monday close after clocks go forward is 16:00 EDT", quotehub.ExchangeNYSE, time.Date(2025, 3, 10, 18, 0, 0, 0, edt), time.Date(2025, 3, 10, 16, 0, 0, 0, edt)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quotehub.CalendarOf(tt.exchange).LastClose(tt.at)
			if !got.Equal(tt.want) {
				t.Errorf("CalendarOf(%q).LastClose(%v) = %v, want %v", tt.exchange, tt.at, got, tt.want)
			}
		})
	}

	for _, exchange := range []string{quotehub.ExchangeUpbit, "LSE", ""} {
		t.Run("always-open "+exchange+" gives t itself", func(t *testing.T) {
			at := time.Date(2025, 11, 22, 3, 4, 5, 6, kst)
			if got := quotehub.CalendarOf(exchange).LastClose(at); !got.Equal(at) {
				t.Errorf("CalendarOf(%q).LastClose(%v) = %v, want t itself", exchange, at, got)
			}
		})
	}

	t.Run("last close is never after t and is a closed instant", func(t *testing.T) {
		for _, exchange := range []string{quotehub.ExchangeKRX, quotehub.ExchangeNYSE} {
			c := quotehub.CalendarOf(exchange)
			start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
			for at := start; at.Before(start.Add(14 * 24 * time.Hour)); at = at.Add(17 * time.Minute) {
				lc := c.LastClose(at)
				if lc.After(at) {
					t.Fatalf("%s: LastClose(%v) = %v is after t", exchange, at, lc)
				}
				if at.Sub(lc) > 4*24*time.Hour {
					t.Fatalf("%s: LastClose(%v) = %v is more than a long weekend back", exchange, at, lc)
				}
				if c.IsOpen(lc) || !c.IsOpen(lc.Add(-time.Minute)) {
					t.Fatalf("%s: LastClose(%v) = %v is not the end of a session", exchange, at, lc)
				}
			}
		}
	})
}
