package history

import (
	"context"
	"math"
	"time"

	"quotehub"
)

// closeLookback is how far back DayCloseQuote looks for the last stored
// day: past the longest market holidays.
const closeLookback = 21 * 24 * time.Hour

// DayCloseQuote returns the quote of a symbol whose market is closed at
// now, made from the last day candle stored before now: its close as the
// price, traded at the day's end, with the day before's close as the
// previous close when it is stored too. ok is false when no day candle is
// stored for it in the last three weeks. source names the provider the
// candle came from.
func DayCloseQuote(ctx context.Context, store quotehub.CandleStore, info quotehub.SymbolInfo, source string, now time.Time) (q quotehub.Quote, ok bool, err error) {
	cs, err := store.Candles(ctx, quotehub.CandleSeries{Symbol: info.Symbol, Interval: quotehub.Day1}, now.Add(-closeLookback), now)
	if err != nil || len(cs) == 0 {
		return q, false, err
	}
	cal := quotehub.CalendarOf(info.Exchange)
	var day quotehub.Period
	for {
		// A stored day whose session has not ended is not a close yet.
		d, ok := cal.Period(time.UnixMilli(cs[len(cs)-1].T), quotehub.Day1)
		if ok && !now.Before(d.End) {
			day = d
			break
		}
		if cs = cs[:len(cs)-1]; len(cs) == 0 {
			return q, false, nil
		}
	}
	last := cs[len(cs)-1]
	end := day.End.UnixMilli()
	q = quotehub.Quote{
		Symbol: info.Symbol, Price: last.Close, Volume: last.V, Has: quotehub.HasVolume,
		Currency: info.Currency, TradeTime: end - 1, FetchedAt: end, Source: source, Market: quotehub.MarketClosed,
	}
	if len(cs) > 1 && cs[len(cs)-2].Close > 0 {
		prev := cs[len(cs)-2].Close
		q.PrevClose, q.Change, q.ChangeRate = prev, last.Close-prev, math.Round((last.Close-prev)/prev*1e6)/1e6
		q.Has |= quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate
	}
	return q, q.Validate() == nil, nil
}
