package yahootest

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"quotehub"
	"quotehub/internal/shard"
)

// Chart requests with period1 and period2 (epoch seconds) get bars: one
// per period of the symbol's market calendar in the range, up to the
// fake's clock, their prices a function of the symbol and the period
// around its Price. Yahoo's habits are kept: intraday and day bars are
// stamped with their start (the open bar with its last trade, the fake's
// clock), week and month bars with the local midnight of their first
// calendar day; one intraday bar in eleven is all nulls (no trade); and
// minutes older than 30 days, 5 and 15 minutes older than 60 and hours
// older than 730 are a 422.

var barIntervals = map[string]struct {
	iv     quotehub.Interval
	window time.Duration // how far back Yahoo keeps it; 0: forever
}{
	"1m": {quotehub.Minute1, 30 * 24 * time.Hour}, "5m": {quotehub.Minute5, 60 * 24 * time.Hour},
	"15m": {quotehub.Minute15, 60 * 24 * time.Hour}, "60m": {quotehub.Hour1, 730 * 24 * time.Hour},
	"1d": {quotehub.Day1, 0}, "1wk": {quotehub.Week1, 0}, "1mo": {quotehub.Month1, 0},
}

// CandleRequests returns how many chart requests asked for a range of
// bars.
func (s *Server) CandleRequests() int64 { return s.candleReqs.Load() }

func (s *Server) bars(e *entry, q url.Values) (int, []byte) {
	s.candleReqs.Add(1)
	spec, ok := barIntervals[q.Get("interval")]
	p1, err1 := strconv.ParseInt(q.Get("period1"), 10, 64)
	p2, err2 := strconv.ParseInt(q.Get("period2"), 10, 64)
	if !ok || err1 != nil || err2 != nil || p1 > p2 {
		return http.StatusBadRequest, chartError("Bad Request", "Invalid input - interval or period")
	}
	now := s.now()
	from, to := time.Unix(p1, 0), time.Unix(p2, 0)
	if spec.window > 0 && from.Before(now.Add(-spec.window)) {
		return http.StatusUnprocessableEntity, chartError("Unprocessable Entity",
			q.Get("interval")+" data not available for startTime="+q.Get("period1")+". The requested range must be within the last "+
				strconv.Itoa(int(spec.window.Hours()/24))+" days.")
	}
	cal := quotehub.CalendarOf(e.Exchange)
	loc := cal.Location()
	type quote struct {
		Open   []*float64 `json:"open"`
		High   []*float64 `json:"high"`
		Low    []*float64 `json:"low"`
		Close  []*float64 `json:"close"`
		Volume []*float64 `json:"volume"`
	}
	var ts []int64
	var b quote
	num := func(f float64) *float64 { return &f }
	for per, ok := cal.Ceil(from, spec.iv); ok && per.Start.Before(to) && !per.Start.After(now); per = cal.Next(per, spec.iv) {
		stamp := per.Start
		switch {
		case spec.iv == quotehub.Week1:
			d := per.Start.In(loc)
			stamp = time.Date(d.Year(), d.Month(), d.Day()-(int(d.Weekday())+6)%7, 0, 0, 0, 0, loc)
		case spec.iv == quotehub.Month1:
			d := per.Start.In(loc)
			stamp = time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, loc)
		case per.Contains(now):
			stamp = now
		}
		ts = append(ts, stamp.Unix())
		h := uint64(shard.Hash(e.Symbol.Symbol))<<32 ^ uint64(per.Start.Unix())*0x9e3779b97f4a7c15
		if spec.iv.Intraday() && h%11 == 0 {
			b.Open, b.High, b.Low, b.Close, b.Volume = append(b.Open, nil), append(b.High, nil), append(b.Low, nil), append(b.Close, nil), append(b.Volume, nil)
			continue
		}
		x := float64(per.Start.Unix())
		tick := e.tick()
		mid := e.Price * (1 + 0.06*math.Sin(x/(86400*23)) + 0.01*math.Sin(x/(3600*5)))
		o := roundTick(mid*(1+0.004*(frac(h)-0.5)), tick)
		c := roundTick(mid*(1+0.004*(frac(h>>16)-0.5)), tick)
		hi := roundTick(math.Max(o, c)*(1+0.003*frac(h>>32)), tick) + tick
		lo := roundTick(math.Min(o, c)*(1-0.003*frac(h>>48)), tick) - tick
		b.Open, b.Close = append(b.Open, num(o)), append(b.Close, num(c))
		b.High, b.Low = append(b.High, num(hi)), append(b.Low, num(lo))
		b.Volume = append(b.Volume, num(math.Round(1000+e.Volume/100*frac(h>>8))))
	}
	type result struct {
		Meta       map[string]any `json:"meta"`
		Timestamp  []int64        `json:"timestamp"`
		Indicators struct {
			Quote []quote `json:"quote"`
		} `json:"indicators"`
	}
	r := result{Meta: map[string]any{"currency": e.Currency, "symbol": e.Symbol.Symbol, "exchangeTimezoneName": loc.String(),
		"dataGranularity": q.Get("interval"), "range": ""}, Timestamp: ts}
	r.Indicators.Quote = []quote{b}
	out, _ := json.Marshal(map[string]any{"chart": map[string]any{"result": []result{r}, "error": nil}})
	return http.StatusOK, out
}

func chartError(code, desc string) []byte {
	b, _ := json.Marshal(map[string]any{"chart": map[string]any{"result": nil,
		"error": map[string]string{"code": code, "description": desc}}})
	return b
}

func frac(h uint64) float64 { return float64(h&0xffff) / 0xffff }
