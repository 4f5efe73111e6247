package sim

import (
	"context"
	"math"
	"time"

	"quotehub"
)

var (
	_ quotehub.CandleSource  = (*Provider)(nil)
	_ quotehub.ListingSource = (*Provider)(nil)
)

// The sim's history is a function of time: the log price of a symbol at t
// is its base price's plus a sum of smooth noise at ten time scales (one
// minute to half a year, four times longer each), every lattice value
// hashed from the seed, the symbol, the scale and the lattice index. So a
// candle depends only on (seed, symbol, period): every node computes the
// same one, in any order, without state. The live walk starts from this
// path (newState), so a chart's history runs into the live prices.

const (
	pathOctaves = 10
	pathBase    = 60.0  // seconds of the finest scale
	pathMaxAmp  = 0.014 // cap of one scale's amplitude (log price)
	pathSamples = 16    // points inside a period that make its high and low
)

// pathAmp[k] is the amplitude of scale k: the walk's volatility over the
// scale's length, capped so the price stays within about ±11 % of base.
var pathAmp = func() (a [pathOctaves]float64) {
	for k := range a {
		secs := pathBase * math.Pow(4, float64(k))
		a[k] = math.Min(pathMaxAmp, 1.5e-4*math.Sqrt(secs))
	}
	return a
}()

// pathAt returns the unrounded price of e at t on the history path.
func (p *Provider) pathAt(e *entry, t time.Time) float64 {
	h := mix64(p.seed*golden ^ hashString(e.info.Symbol) ^ 0x68697374) // "hist"
	x := float64(t.UnixNano()) / 1e9 / pathBase
	lg := 0.0
	for k := range pathOctaves {
		i := math.Floor(x)
		f := x - i
		f = f * f * (3 - 2*f) // smoothstep: no kinks at lattice points
		a := lattice(h, k, int64(i))
		b := lattice(h, k, int64(i)+1)
		lg += pathAmp[k] * (a + (b-a)*f)
		x /= 4
	}
	return basePrice(e.info.Symbol) * math.Exp(lg*p.vol)
}

// lattice is the value in [-1, 1) of scale k at lattice point i.
func lattice(h uint64, k int, i int64) float64 {
	return 2*unitFloat(mix64(h^uint64(k)<<56^uint64(i)*golden)) - 1
}

// Listed implements quotehub.ListingSource: each symbol's history starts
// on a day of 2019 or 2020 derived from its name.
func (p *Provider) Listed(_ context.Context, symbol string) (time.Time, bool, error) {
	if _, ok := p.entries[symbol]; !ok {
		return time.Time{}, false, nil
	}
	days := int(mix64(hashString(symbol)) % 730)
	return time.Date(2019, 1, 1+days, 0, 0, 0, 0, time.UTC), true, nil
}

// CandleCalls returns how many Candles calls the provider answered or
// failed, for tests that count upstream requests.
func (p *Provider) CandleCalls() int64 { return p.candleCalls.Load() }

// Candles implements quotehub.CandleSource: the candles of the periods of
// cal starting in [from, to), since the listing and up to now, from the
// history path; the candle of a period still open ends at now. It fails
// like Fetch when the provider is down.
func (p *Provider) Candles(ctx context.Context, s quotehub.CandleSeries, cal *quotehub.Calendar, from, to time.Time) ([]quotehub.Candle, error) {
	p.candleCalls.Add(1)
	if err := p.delay(ctx); err != nil {
		return nil, err
	}
	if p.down.Load() {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "sim: upstream is down")
	}
	e, ok := p.entries[s.Symbol]
	if !ok {
		return nil, quotehub.Errorf(quotehub.EUnknownSymbol, "sim: unknown symbol %s", s.Symbol)
	}
	listed, _, _ := p.Listed(ctx, s.Symbol)
	if from.Before(listed) {
		from = listed
	}
	now := p.now()
	c := e.cls
	var out []quotehub.Candle
	for per, ok := cal.Ceil(from, s.Interval); ok && per.Start.Before(to) && per.Start.Before(now); per = cal.Next(per, s.Interval) {
		end := per.End
		if now.Before(end) {
			end = now
		}
		o, cl := c.round(p.pathAt(e, per.Start)), c.round(p.pathAt(e, end))
		hi, lo := max(o, cl), min(o, cl)
		step := end.Sub(per.Start) / (pathSamples + 1)
		for i := 1; i <= pathSamples; i++ {
			v := c.round(p.pathAt(e, per.Start.Add(time.Duration(i)*step)))
			hi, lo = max(hi, v), min(lo, v)
		}
		// Volume: the typical daily volume spread over the session time
		// the period covers, scaled by a per-period draw in [0.5, 1.5).
		daily := c.turnover * turnoverWeight(e.info.Symbol) / basePrice(e.info.Symbol)
		share := end.Sub(per.Start).Seconds() / sessionSecs
		if c.rolling {
			share = end.Sub(per.Start).Seconds() / daySecs
		}
		draw := 0.5 + unitFloat(mix64(hashString(e.info.Symbol)^uint64(per.Start.UnixMilli())))
		out = append(out, quotehub.Candle{T: per.Start.UnixMilli(), Open: o, High: hi, Low: lo, Close: cl,
			V: c.roundVolume(daily * share * draw)})
	}
	return out, nil
}
