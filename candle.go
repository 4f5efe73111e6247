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

// AppendFloatJSON appends f as a JSON number, as the quote encoder does;
// exported for the other packages' hand-written encoders.
func AppendFloatJSON(b []byte, f float64) []byte { return appendFloat(b, f) }

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
