package quotehub

import (
	"context"
	"strconv"
	"time"
)

// Candle is the open, high, low, close and volume of one symbol over one
// period of an interval. T is the period's start in Unix milliseconds.
// Closed is set once the period has ended and the candle is final; a closed
// candle never changes again.
type Candle struct {
	T                         int64
	Open, High, Low, Close, V float64
	Closed                    bool
}

// AppendJSON appends the wire form {"t","o","h","l","c","v","closed"} of c.
func (c *Candle) AppendJSON(b []byte) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, c.T, 10)
	b = append(b, `,"o":`...)
	b = appendFloat(b, c.Open)
	b = append(b, `,"h":`...)
	b = appendFloat(b, c.High)
	b = append(b, `,"l":`...)
	b = appendFloat(b, c.Low)
	b = append(b, `,"c":`...)
	b = appendFloat(b, c.Close)
	b = append(b, `,"v":`...)
	b = appendFloat(b, c.V)
	b = append(b, `,"closed":`...)
	b = strconv.AppendBool(b, c.Closed)
	return append(b, '}')
}

// CandleSeries names the candles of one symbol at one interval.
type CandleSeries struct {
	Symbol   string
	Interval Interval
}

// String is "SYMBOL/1d".
func (s CandleSeries) String() string { return s.Symbol + "/" + s.Interval.String() }

// CandleBatch is a batch of candles of one series, oldest first.
type CandleBatch struct {
	CandleSeries
	Candles []Candle
}

// CandleStore keeps closed candles. Closed candles are immutable: storing
// a candle whose (symbol, interval, start) is already stored keeps the
// stored one, so a write can be repeated (a retried backfill, two nodes
// closing the same period) without effect. Implementations are safe for
// concurrent use.
type CandleStore interface {
	// PutCandles stores closed candles of several series in one batch
	// (one multi-row statement where the store has statements). A candle
	// that is not closed is refused with a bad_request error, and then
	// nothing of the batch is stored.
	PutCandles(ctx context.Context, batches []CandleBatch) error
	// Candles returns the stored candles of s whose start is in
	// [from, to), oldest first.
	Candles(ctx context.Context, s CandleSeries, from, to time.Time) ([]Candle, error)
}

// CandleCache holds chunks of candles under keys that name the period a
// chunk covers (history.ChunkKey). A chunk is written whole and read
// whole; it disappears at its expiry. Implementations are safe for
// concurrent use.
type CandleCache interface {
	// GetChunks returns the cached chunks of keys, in order; a missing one
	// is nil with ok[i] false.
	GetChunks(ctx context.Context, keys []string) (chunks [][]Candle, ok []bool, err error)
	// PutChunk stores candles under key until expireAt (an absolute time,
	// so every node expires a chunk at the same instant).
	PutChunk(ctx context.Context, key string, candles []Candle, expireAt time.Time) error
}

// CandleSource is an optional capability of a Provider whose upstream has
// candles (Upbit's candle endpoints, Yahoo's chart ranges, the sim's
// generated history).
type CandleSource interface {
	// Candles returns the candles of s whose periods on cal start in
	// [from, to), oldest first; Closed is left to the caller, who knows
	// the time. A period without trades may have no candle. An error means
	// nothing of the range may be used: a caller stores nothing of it.
	Candles(ctx context.Context, s CandleSeries, cal *Calendar, from, to time.Time) ([]Candle, error)
}

// ListingSource is an optional capability of a CandleSource that knows
// when a symbol's history begins.
type ListingSource interface {
	// Listed returns the start of the symbol's history; ok is false when
	// the source does not know it.
	Listed(ctx context.Context, symbol string) (t time.Time, ok bool, err error)
}

// MaxCandles is the most candles one read returns; DefaultCandles is how
// many a read without a count returns.
const (
	MaxCandles     = 1000
	DefaultCandles = 100
	// MaxAverageN is the longest moving average a read may ask for.
	MaxAverageN = 250
)

// CandleQuery asks for the candles of one symbol. From and To bound the
// candles' start times (inclusive; zero means unbounded, To at most now);
// of those, the newest Count are returned (0: DefaultCandles). MA and EMA
// ask for simple and exponential moving averages of the closes over each
// window length, aligned to the candles.
type CandleQuery struct {
	Symbol   string
	Interval Interval
	From, To time.Time
	Count    int
	MA, EMA  []int
}

// Check validates what does not need the catalogue: the interval, the
// count, the averages, and the range against now.
func (q *CandleQuery) Check(now time.Time) error {
	switch {
	case !q.Interval.Valid():
		return Errorf(EBadRequest, "unknown interval: use one of 1m, 5m, 15m, 1h, 1d, 1w, 1M")
	case q.Count < 0 || q.Count > MaxCandles:
		return Errorf(EBadRequest, "count must be between 1 and %d, got %d", MaxCandles, q.Count)
	case !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To):
		return Errorf(EBadRequest, "from (%d) is after to (%d)", q.From.UnixMilli(), q.To.UnixMilli())
	case q.From.After(now):
		return Errorf(EBadRequest, "from (%d) is in the future", q.From.UnixMilli())
	}
	for _, n := range append(q.MA[:len(q.MA):len(q.MA)], q.EMA...) {
		if n < 1 || n > MaxAverageN {
			return Errorf(EBadRequest, "moving average length %d is not between 1 and %d", n, MaxAverageN)
		}
	}
	return nil
}

// Average is one moving average aligned to a chart's candles: Values[i]
// is its value at candle i, valid where OK[i] (enough candles lead to it).
type Average struct {
	N      int
	Values []float64
	OK     []bool
}

// CandleChart is the answer to a CandleQuery.
type CandleChart struct {
	Symbol   string
	Interval Interval
	Candles  []Candle
	MA, EMA  []Average
}

// AppendJSON appends the wire form of ch: {"symbol","interval","candles":[…]}
// plus "ma" and "ema" objects keyed by window length when asked, each an
// array aligned to candles with null where the average does not exist yet.
func (ch *CandleChart) AppendJSON(b []byte) []byte {
	b = append(b, `{"symbol":`...)
	b = appendString(b, ch.Symbol)
	b = append(b, `,"interval":`...)
	b = appendString(b, ch.Interval.String())
	b = append(b, `,"candles":[`...)
	for i := range ch.Candles {
		if i > 0 {
			b = append(b, ',')
		}
		b = ch.Candles[i].AppendJSON(b)
	}
	b = append(b, ']')
	for _, set := range []struct {
		name string
		avgs []Average
	}{{"ma", ch.MA}, {"ema", ch.EMA}} {
		if len(set.avgs) == 0 {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, set.name...)
		b = append(b, `":{`...)
		for i, a := range set.avgs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(a.N), 10)
			b = append(b, `":[`...)
			for j, v := range a.Values {
				if j > 0 {
					b = append(b, ',')
				}
				if a.OK[j] {
					b = appendFloat(b, v)
				} else {
					b = append(b, "null"...)
				}
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
