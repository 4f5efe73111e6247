package history

import (
	"time"

	"quotehub"
)

// Builder folds the trades of one symbol into the open candle of each of
// its intervals, on the symbol's market calendar. When a trade falls into
// a later period, or CloseUntil passes a period's end, the candle of the
// ended period is returned closed. Not safe for concurrent use; one
// Builder per symbol.
type Builder struct {
	cal     *quotehub.Calendar
	open    []openCandle
	lastVol float64
	hasVol  bool
	// The seq and fetched_at of the quote AddQuote is folding, stamped on
	// the candles it touches.
	seq uint64
	at  int64
}

type openCandle struct {
	iv quotehub.Interval
	p  quotehub.Period
	c  quotehub.Candle
	on bool
	// seq and at are the seq and fetched_at of the newest quote folded
	// into c (0 for trades added without a quote).
	seq uint64
	at  int64
	// done is the end of the last period closed, before which a trade is
	// late: it does not open that period again.
	done time.Time
}

// IntervalCandle is a candle with its interval, and the seq and
// fetched_at of the newest quote folded into it (0 when none was).
type IntervalCandle struct {
	Interval  quotehub.Interval
	Period    quotehub.Period
	Seq       uint64
	FetchedAt int64
	quotehub.Candle
}

// NewBuilder returns a Builder of the given intervals on cal.
func NewBuilder(cal *quotehub.Calendar, intervals ...quotehub.Interval) *Builder {
	b := &Builder{cal: cal}
	for _, iv := range intervals {
		b.open = append(b.open, openCandle{iv: iv})
	}
	return b
}

// AddQuote folds a quote: its price at its trade time, and as volume the
// growth of its cumulative volume since the previous quote (a cumulative
// volume that shrinks started over, at a new trading day, and counts
// whole).
func (b *Builder) AddQuote(q quotehub.Quote) []IntervalCandle {
	dv := 0.0
	if q.Has&quotehub.HasVolume != 0 {
		switch {
		case !b.hasVol:
		case q.Volume >= b.lastVol:
			dv = q.Volume - b.lastVol
		default:
			dv = q.Volume
		}
		b.lastVol, b.hasVol = q.Volume, true
	}
	b.seq, b.at = q.Seq, q.FetchedAt
	closed := b.Add(time.UnixMilli(q.TradeTime), q.Price, dv)
	b.seq, b.at = 0, 0
	return closed
}

// Add folds one trade of volume v at price at t and returns the candles
// that closed because t is past their period. A trade outside every
// period of an interval (the market is closed) or older than the open
// candle does not touch that interval.
func (b *Builder) Add(t time.Time, price, v float64) []IntervalCandle {
	closed := b.CloseUntil(t)
	for i := range b.open {
		o := &b.open[i]
		if o.on && o.p.Contains(t) {
			c := &o.c
			c.High = max(c.High, price)
			c.Low = min(c.Low, price)
			c.Close = price
			c.V += v
			o.seq, o.at = b.seq, b.at
			continue
		}
		if o.on && t.Before(o.p.Start) || !o.on && t.Before(o.done) {
			continue // late trade of an earlier period
		}
		p, ok := b.cal.Period(t, o.iv)
		if !ok {
			continue
		}
		o.p, o.on, o.seq, o.at = p, true, b.seq, b.at
		o.c = quotehub.Candle{T: p.Start.UnixMilli(), Open: price, High: price, Low: price, Close: price, V: v}
	}
	return closed
}

// CloseUntil closes and returns the open candles whose period ended at or
// before now.
func (b *Builder) CloseUntil(now time.Time) []IntervalCandle {
	var closed []IntervalCandle
	for i := range b.open {
		o := &b.open[i]
		if o.on && !now.Before(o.p.End) {
			c := o.c
			c.Closed = true
			closed = append(closed, IntervalCandle{Interval: o.iv, Period: o.p, Seq: o.seq, FetchedAt: o.at, Candle: c})
			o.on, o.done = false, o.p.End
		}
	}
	return closed
}

// Current returns the open candle of iv; ok is false when none is open.
func (b *Builder) Current(iv quotehub.Interval) (c quotehub.Candle, p quotehub.Period, ok bool) {
	ic, ok := b.CurrentStamped(iv)
	return ic.Candle, ic.Period, ok
}

// CurrentStamped is Current with the seq and fetched_at of the newest
// quote folded into the candle.
func (b *Builder) CurrentStamped(iv quotehub.Interval) (IntervalCandle, bool) {
	for _, o := range b.open {
		if o.iv == iv && o.on {
			return IntervalCandle{Interval: iv, Period: o.p, Seq: o.seq, FetchedAt: o.at, Candle: o.c}, true
		}
	}
	return IntervalCandle{}, false
}
