package main

import (
	"context"

	"quotehub"
	"quotehub/history"
	"quotehub/hub"
)

// candleFeed gives the hub the candles its sessions subscribe to: the
// open candle exactly as a read returns it (history.Service merges the
// node's live candle with the upstream's view of the period), and a
// period's final candle as this node folded it, merged the same way.
// svc and live are set once the node is wired, before it serves.
type candleFeed struct {
	svc  *history.Service
	live *history.Live
}

var _ hub.CandleSource = (*candleFeed)(nil)

// Check implements hub.CandleSource.
func (f *candleFeed) Check(ctx context.Context, symbol string) error {
	return f.svc.Check(ctx, symbol)
}

// Current implements hub.CandleSource. The seq and fetched_at are those of
// the newest quote folded into the live candle, read before the candle
// itself, which therefore holds at least that quote.
func (f *candleFeed) Current(ctx context.Context, s quotehub.CandleSeries) (hub.CandleValue, bool) {
	stamp, stamped := f.live.CurrentStamped(s)
	c, p, ok, err := f.svc.Current(ctx, s)
	if err != nil || !ok {
		return hub.CandleValue{}, false
	}
	v := hub.CandleValue{Candle: c, End: p.End}
	if stamped && stamp.T == c.T {
		v.Seq, v.FetchedAt = stamp.Seq, stamp.FetchedAt
	}
	return v, true
}

// Final implements hub.CandleSource.
func (f *candleFeed) Final(_ context.Context, s quotehub.CandleSeries, t int64) (hub.CandleValue, bool) {
	ic, ok := f.live.Closed(s)
	if !ok || ic.T != t {
		return hub.CandleValue{}, false
	}
	return hub.CandleValue{Candle: f.svc.Final(s, ic.Candle), Seq: ic.Seq, FetchedAt: ic.FetchedAt, End: ic.Period.End}, true
}
