package upbit

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"quotehub"
)

var _ quotehub.CandleSource = (*Provider)(nil)

// candlePage is the most candles Upbit returns per request.
const candlePage = 200

// candlePath is the endpoint of an interval: minute candles of unit 1, 5,
// 15 and 60, day, week and month candles. Upbit cuts them as the UPBIT
// calendar does (UTC days, weeks from Monday, months from the 1st).
func candlePath(iv quotehub.Interval) string {
	switch iv {
	case quotehub.Minute1:
		return "/v1/candles/minutes/1"
	case quotehub.Minute5:
		return "/v1/candles/minutes/5"
	case quotehub.Minute15:
		return "/v1/candles/minutes/15"
	case quotehub.Hour1:
		return "/v1/candles/minutes/60"
	case quotehub.Day1:
		return "/v1/candles/days"
	case quotehub.Week1:
		return "/v1/candles/weeks"
	case quotehub.Month1:
		return "/v1/candles/months"
	}
	return ""
}

type candleJSON struct {
	Start  string  `json:"candle_date_time_utc"` // no zone: UTC
	Open   float64 `json:"opening_price"`
	High   float64 `json:"high_price"`
	Low    float64 `json:"low_price"`
	Close  float64 `json:"trade_price"`
	Volume float64 `json:"candle_acc_trade_volume"`
}

// Candles implements quotehub.CandleSource with Upbit's candle endpoints:
// pages of 200, newest first, walking back from `to` (exclusive) with the
// oldest start of each page, every request paced in Upbit's "candle"
// rate-limit group. A page shorter than asked means the history ends. Any
// failure fails the whole range (a caller stores nothing of it).
func (p *Provider) Candles(ctx context.Context, s quotehub.CandleSeries, _ *quotehub.Calendar, from, to time.Time) ([]quotehub.Candle, error) {
	path := candlePath(s.Interval)
	if path == "" || !validCode(s.Symbol) {
		return nil, quotehub.Errorf(quotehub.EBadRequest, "upbit: no %s candles of %s", s.Interval, s.Symbol)
	}
	var out []quotehub.Candle // newest first while paging
	cursor := to
	for {
		v := url.Values{"market": {s.Symbol}, "count": {strconv.Itoa(candlePage)},
			"to": {cursor.UTC().Format("2006-01-02T15:04:05Z")}}
		body, err := p.get(ctx, p.candle, path+"?"+v.Encode())
		if errors.Is(err, errNotFound) {
			return nil, unknownErr(s.Symbol)
		}
		if err != nil {
			return nil, err
		}
		var page []candleJSON
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, upstreamErr(err, "upbit: malformed candles of %s", s.Symbol)
		}
		oldest := cursor
		done := len(page) < candlePage
		for _, c := range page {
			t, err := time.Parse("2006-01-02T15:04:05", c.Start)
			if err != nil {
				return nil, upstreamErr(err, "upbit: malformed candle time %q of %s", c.Start, s.Symbol)
			}
			if !t.Before(oldest) {
				return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: candles of %s out of order", s.Symbol)
			}
			oldest = t
			if t.Before(from) {
				done = true
				break
			}
			out = append(out, quotehub.Candle{T: t.UnixMilli(), Open: c.Open, High: c.High, Low: c.Low, Close: c.Close, V: c.Volume})
		}
		if done || len(page) == 0 {
			break
		}
		cursor = oldest
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
