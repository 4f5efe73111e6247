package upbittest

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The fake's candle endpoints (/v1/candles/minutes/{unit}, days, weeks,
// months) serve a deterministic history per market: every period from
// CandlesSince up to the fake's clock, its prices a function of the market
// and the period's start around the market's base price, with a period now
// and then missing (no trade happened), newest first, at most 200 per
// request, paged with `to` (exclusive), in the "candle" rate-limit group.

// CandlesSince is when every market's candle history begins.
var CandlesSince = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *Server) serveCandles(mux *http.ServeMux) {
	for _, path := range []string{"/v1/candles/minutes/{unit}", "/v1/candles/days", "/v1/candles/weeks", "/v1/candles/months"} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			s.serveREST(w, r, "candle", s.candles)
		})
	}
}

// CandleRequests returns how many candle requests the fake received.
func (s *Server) CandleRequests() int64 { return s.candleReqs.Load() }

// candleStep cuts the periods of one candle endpoint: floor gives the
// start of the period containing t, prev the start of the one before.
type candleStep struct {
	floor func(time.Time) time.Time
	prev  func(time.Time) time.Time
	unit  int // minutes, for "unit" in minute candles; 0 otherwise
	kind  string
}

func stepOf(r *http.Request) (candleStep, bool) {
	switch r.URL.Path {
	case "/v1/candles/days":
		return candleStep{
			floor: func(t time.Time) time.Time { return t.Truncate(24 * time.Hour) },
			prev:  func(t time.Time) time.Time { return t.AddDate(0, 0, -1) }, kind: "days"}, true
	case "/v1/candles/weeks":
		return candleStep{
			floor: func(t time.Time) time.Time {
				d := t.Truncate(24 * time.Hour)
				return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
			},
			prev: func(t time.Time) time.Time { return t.AddDate(0, 0, -7) }, kind: "weeks"}, true
	case "/v1/candles/months":
		return candleStep{
			floor: func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) },
			prev:  func(t time.Time) time.Time { return t.AddDate(0, -1, 0) }, kind: "months"}, true
	}
	unit, _ := strconv.Atoi(r.PathValue("unit"))
	switch unit {
	case 1, 3, 5, 10, 15, 30, 60, 240:
	default:
		return candleStep{}, false
	}
	d := time.Duration(unit) * time.Minute
	return candleStep{
		floor: func(t time.Time) time.Time { return t.Truncate(d) },
		prev:  func(t time.Time) time.Time { return t.Add(-d) }, unit: unit, kind: "minutes"}, true
}

// parseTo reads Upbit's `to`: ISO 8601 with Z or an offset, or without
// one (UTC), with a T or a space.
func parseTo(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func (s *Server) candles(r *http.Request) (int, []byte) {
	s.candleReqs.Add(1)
	step, ok := stepOf(r)
	if !ok {
		return http.StatusBadRequest, errorBody(400, "specified unit is not valid.")
	}
	q := r.URL.Query()
	code := q.Get("market")
	if code == "" {
		return http.StatusBadRequest, errorBody(400, "Missing request parameter error. Check the required parameters!")
	}
	s.mu.Lock()
	st := s.byCode[code]
	s.mu.Unlock()
	if st == nil || st.delisted {
		return http.StatusNotFound, errorBody(404, "Code not found")
	}
	count := 1
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return http.StatusBadRequest, errorBody(400, "Invalid parameter. Check the given value!")
		}
		count = n
	}
	now := s.now().UTC()
	to := now.Add(time.Nanosecond) // the open period is included
	if v := q.Get("to"); v != "" {
		t, ok := parseTo(v)
		if !ok {
			return http.StatusBadRequest, errorBody(400, "Invalid parameter. Check the given value!")
		}
		to = t
	}
	base := st.base
	out := make([]map[string]any, 0, count)
	for p := step.floor(to.Add(-time.Nanosecond)); len(out) < count && !p.Before(CandlesSince); p = step.prev(p) {
		if p.After(now) {
			continue
		}
		h := mix64(s.seed ^ strHash(code) ^ uint64(p.Unix()))
		if step.kind == "minutes" && h%13 == 0 {
			continue // no trade in this period: no candle
		}
		// A slow wave and a per-period wiggle around the base price.
		x := float64(p.Unix())
		mid := base * (1 + 0.08*math.Sin(x/(86400*17)) + 0.02*math.Sin(x/(3600*7)))
		o := round8(mid * (1 + 0.004*(unit01(h)-0.5)))
		c := round8(mid * (1 + 0.004*(unit01(h>>8)-0.5)))
		hi := round8(math.Max(o, c) * (1 + 0.003*unit01(h>>16)))
		lo := round8(math.Min(o, c) * (1 - 0.003*unit01(h>>24)))
		m := map[string]any{
			"market":                  code,
			"candle_date_time_utc":    p.Format("2006-01-02T15:04:05"),
			"candle_date_time_kst":    p.Add(9 * time.Hour).Format("2006-01-02T15:04:05"),
			"opening_price":           o,
			"high_price":              hi,
			"low_price":               lo,
			"trade_price":             c,
			"timestamp":               p.UnixMilli() + 1,
			"candle_acc_trade_price":  round8(c * (1 + 10*unit01(h>>32))),
			"candle_acc_trade_volume": round8(1 + 10*unit01(h>>32)),
		}
		if step.unit > 0 {
			m["unit"] = step.unit
		}
		if step.kind == "weeks" || step.kind == "months" {
			m["first_day_of_period"] = p.Format("2006-01-02")
		}
		out = append(out, m)
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

func round8(x float64) float64 { return round(x, 8) }

func unit01(h uint64) float64 { return float64(h&0xffff) / 0xffff }
