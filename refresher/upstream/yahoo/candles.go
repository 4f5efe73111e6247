package yahoo

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"quotehub"
)

var _ quotehub.CandleSource = (*Provider)(nil)

// errNoData is Yahoo's 422: it does not keep the asked range at that
// interval (minutes only for the last 30 days, 5 and 15 minutes for 60,
// hours for 730). There are no candles there to store.
var errNoData = errors.New("yahoo: no data for that range at that interval")

// chartInterval is Yahoo's name of an interval.
func chartInterval(iv quotehub.Interval) string {
	switch iv {
	case quotehub.Minute1:
		return "1m"
	case quotehub.Minute5:
		return "5m"
	case quotehub.Minute15:
		return "15m"
	case quotehub.Hour1:
		return "60m"
	case quotehub.Day1:
		return "1d"
	case quotehub.Week1:
		return "1wk"
	case quotehub.Month1:
		return "1mo"
	}
	return ""
}

// barsResponse is the part of a chart answer with bars: timestamps in
// seconds and parallel arrays whose entries may be null (no trade).
type barsResponse struct {
	Chart *struct {
		Result []struct {
			Timestamp  []int64 `json:"timestamp"`
			Indicators struct {
				Quote []struct {
					Open   []*float64 `json:"open"`
					High   []*float64 `json:"high"`
					Low    []*float64 `json:"low"`
					Close  []*float64 `json:"close"`
					Volume []*float64 `json:"volume"`
				} `json:"quote"`
			} `json:"indicators"`
		} `json:"result"`
	} `json:"chart"`
}

// Candles implements quotehub.CandleSource with one chart request for the
// range (period1/period2 in seconds), under the same rate limiter and
// bound on requests in flight as quotes. Yahoo stamps a bar with its
// session's open, its last trade (the open bar), or the local midnight of
// its first day (weeks, months); each is mapped to the period of cal it
// belongs to. Bars with a null value are periods without trades. A range
// Yahoo does not keep at that interval has no candles.
func (p *Provider) Candles(ctx context.Context, s quotehub.CandleSeries, cal *quotehub.Calendar, from, to time.Time) ([]quotehub.Candle, error) {
	iv := chartInterval(s.Interval)
	if iv == "" {
		return nil, quotehub.Errorf(quotehub.EBadRequest, "yahoo: no %s candles", s.Interval)
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, unavailable(s.Symbol, "not requested", ctx.Err())
	}
	defer func() { <-p.sem }()
	if err := p.limiter.Wait(ctx); err != nil {
		return nil, quotehub.Errorf(quotehub.ERateLimited, "yahoo: %s: no request slot before the deadline", s.Symbol)
	}
	q := "interval=" + iv + "&period1=" + strconv.FormatInt(from.Unix(), 10) +
		"&period2=" + strconv.FormatInt(to.Unix(), 10) + "&includePrePost=false"
	body, o := p.request(ctx, s.Symbol, q)
	if errors.Is(o.err, errNoData) {
		return nil, nil
	}
	if o.err != nil {
		if o.retryAfter > 0 {
			return nil, &quotehub.Backoff{Err: o.err, After: o.retryAfter}
		}
		return nil, o.err
	}
	var r barsResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Chart == nil {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "yahoo: %s: malformed chart", s.Symbol)
	}
	if len(r.Chart.Result) == 0 || len(r.Chart.Result[0].Indicators.Quote) == 0 {
		return nil, nil
	}
	res := r.Chart.Result[0]
	bars := res.Indicators.Quote[0]
	n := len(res.Timestamp)
	if len(bars.Open) != n || len(bars.High) != n || len(bars.Low) != n || len(bars.Close) != n {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "yahoo: %s: chart arrays of different lengths", s.Symbol)
	}
	var out []quotehub.Candle
	for i, ts := range res.Timestamp {
		o, h, l, c := bars.Open[i], bars.High[i], bars.Low[i], bars.Close[i]
		if o == nil || h == nil || l == nil || c == nil {
			continue // no trade in this period
		}
		t := time.Unix(ts, 0)
		per, ok := cal.Period(t, s.Interval)
		if !ok {
			per, ok = cal.Ceil(t, s.Interval)
		}
		if !ok || per.Start.Before(from) || !per.Start.Before(to) {
			continue
		}
		v := 0.0
		if i < len(bars.Volume) && bars.Volume[i] != nil {
			v = *bars.Volume[i]
		}
		if k := len(out); k > 0 && out[k-1].T >= per.Start.UnixMilli() {
			continue // two bars of one period: keep the first
		}
		out = append(out, quotehub.Candle{T: per.Start.UnixMilli(), Open: *o, High: *h, Low: *l, Close: *c, V: v})
	}
	return out, nil
}
