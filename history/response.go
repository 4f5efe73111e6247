package history

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"quotehub"
)

// responses keeps the encoded JSON of charts over closed ranges: such a
// chart cannot change (its candles are closed, and closed candles are
// immutable), so a warm read of it is a map lookup and a copy to the
// socket instead of a walk through the chunks and an encoding of every
// number. Entries live for a while, not forever, and the whole is bounded
// in bytes; past the bound, arbitrary entries make room.
type responses struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	m     map[string]response
	bytes int
}

type response struct {
	b       []byte
	expires time.Time
}

func (r *responses) get(key string, now time.Time) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.b, true
}

func (r *responses) put(key string, b []byte, now time.Time) {
	if len(b) > r.max/16 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[key]; ok {
		r.bytes -= len(old.b)
	}
	for k, e := range r.m {
		if r.bytes+len(b) <= r.max {
			break
		}
		if k != key {
			delete(r.m, k)
			r.bytes -= len(e.b)
		}
	}
	r.m[key] = response{b: b, expires: now.Add(r.ttl)}
	r.bytes += len(b)
}

// responseKey names a query in its normalised form.
func responseKey(q quotehub.CandleQuery) string {
	var b strings.Builder
	b.WriteString(q.Symbol)
	b.WriteByte('|')
	b.WriteString(q.Interval.String())
	for _, v := range []int64{q.From.UnixMilli(), q.To.UnixMilli(), int64(q.Count)} {
		b.WriteByte('|')
		b.WriteString(strconv.FormatInt(v, 10))
	}
	for _, ns := range [][]int{q.MA, q.EMA} {
		b.WriteByte('|')
		for i, n := range ns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(n))
		}
	}
	return b.String()
}

// ChartJSON answers q like Chart, encoded ({"symbol","interval","candles",
// "ma","ema"}). A chart over a closed range (To set, the last period
// starting by To ended) is encoded once and its bytes served again; the
// caller must not change them.
func (s *Service) ChartJSON(ctx context.Context, q quotehub.CandleQuery) ([]byte, error) {
	now := s.o.Now()
	if err := q.Check(now); err != nil {
		return nil, err
	}
	if q.Count == 0 {
		q.Count = quotehub.DefaultCandles
	}
	key := ""
	if !q.To.IsZero() && q.To.Before(now) {
		key = responseKey(q)
		if b, ok := s.resp.get(key, now); ok {
			return b, nil
		}
	}
	ch, err := s.Chart(ctx, q)
	if err != nil {
		return nil, err
	}
	b := ch.AppendJSON(make([]byte, 0, 64+100*len(ch.Candles)))
	if key != "" && s.closedRange(ctx, q, ch, now) {
		s.resp.put(key, b, now)
	}
	return b, nil
}

// closedRange says whether every candle ch could hold has closed at now.
func (s *Service) closedRange(ctx context.Context, q quotehub.CandleQuery, ch quotehub.CandleChart, now time.Time) bool {
	for i := range ch.Candles {
		if !ch.Candles[i].Closed {
			return false
		}
	}
	info, ok, err := s.o.Catalog.Lookup(ctx, q.Symbol)
	if err != nil || !ok {
		return false
	}
	p, ok := quotehub.CalendarOf(info.Exchange).Floor(q.To, q.Interval)
	return ok && !now.Before(p.End)
}
