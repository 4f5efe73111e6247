package history

import (
	"sync"
	"time"

	"quotehub"
)

// Live folds the quotes a node receives into the open candle of every
// interval of each symbol, so that the newest candle of a read moves with
// the quotes instead of with the upstream's candle endpoint. It is safe
// for concurrent use; Fold runs on the bus's delivery path and costs a
// few comparisons per quote and interval while the periods do not change.
type Live struct {
	calendar func(symbol string) (*quotehub.Calendar, bool)
	now      func() time.Time

	mu sync.RWMutex
	b  map[string]*liveBuilder
}

type liveBuilder struct {
	mu     sync.Mutex
	b      *Builder
	closed [quotehub.Month1 + 1]IntervalCandle // the last candle closed, by interval
}

// note keeps the candles just closed. lb.mu is held.
func (lb *liveBuilder) note(closed []IntervalCandle) {
	for _, c := range closed {
		lb.closed[c.Interval] = c
	}
}

// NewLive returns a Live; calendar names a symbol's market calendar (ok
// false: the symbol is not folded), now is the clock (nil: time.Now).
func NewLive(calendar func(symbol string) (*quotehub.Calendar, bool), now func() time.Time) *Live {
	if now == nil {
		now = time.Now
	}
	return &Live{calendar: calendar, now: now, b: make(map[string]*liveBuilder)}
}

func (l *Live) builder(sym string) *liveBuilder {
	l.mu.RLock()
	lb := l.b[sym]
	l.mu.RUnlock()
	if lb != nil {
		return lb
	}
	cal, ok := l.calendar(sym)
	if !ok {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lb = l.b[sym]; lb == nil {
		lb = &liveBuilder{b: NewBuilder(cal, quotehub.Intervals...)}
		l.b[sym] = lb
	}
	return lb
}

// Fold folds quotes (of any symbols) into their open candles.
func (l *Live) Fold(quotes []quotehub.Quote) {
	for i := range quotes {
		lb := l.builder(quotes[i].Symbol)
		if lb == nil {
			continue
		}
		lb.mu.Lock()
		if closed := lb.b.AddQuote(quotes[i]); closed != nil {
			lb.note(closed)
		}
		lb.mu.Unlock()
	}
}

// Current returns the open candle of s folded so far; ok is false when
// none is open now. Its open, high and low are only what this node saw:
// Service merges it with the upstream's view of the period.
func (l *Live) Current(s quotehub.CandleSeries) (quotehub.Candle, bool) {
	c, ok := l.CurrentStamped(s)
	return c.Candle, ok
}

// CurrentStamped is Current with the seq and fetched_at of the newest
// quote folded into the candle.
func (l *Live) CurrentStamped(s quotehub.CandleSeries) (IntervalCandle, bool) {
	lb := l.existing(s)
	if lb == nil {
		return IntervalCandle{}, false
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if closed := lb.b.CloseUntil(l.now()); closed != nil {
		lb.note(closed)
	}
	return lb.b.CurrentStamped(s.Interval)
}

// Closed returns the candle of s this node closed last (its period ended,
// by the clock or by a quote of a later period), as folded here.
func (l *Live) Closed(s quotehub.CandleSeries) (IntervalCandle, bool) {
	lb := l.existing(s)
	if lb == nil || !s.Interval.Valid() {
		return IntervalCandle{}, false
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if closed := lb.b.CloseUntil(l.now()); closed != nil {
		lb.note(closed)
	}
	c := lb.closed[s.Interval]
	return c, c.Closed
}

func (l *Live) existing(s quotehub.CandleSeries) *liveBuilder {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.b[s.Symbol]
}
