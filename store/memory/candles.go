package memory

import (
	"context"
	"slices"
	"sync"
	"time"

	"quotehub"
)

var (
	_ quotehub.CandleStore = (*CandleStore)(nil)
	_ quotehub.CandleCache = (*CandleCache)(nil)
)

// CandleStore is the embedded quotehub.CandleStore: closed candles per
// series, sorted by start, in this process's memory.
type CandleStore struct {
	mu     sync.RWMutex
	series map[quotehub.CandleSeries][]quotehub.Candle
}

// NewCandleStore returns an empty CandleStore.
func NewCandleStore() *CandleStore {
	return &CandleStore{series: make(map[quotehub.CandleSeries][]quotehub.Candle)}
}

// PutCandles implements quotehub.CandleStore: the first write of a
// (symbol, interval, start) wins.
func (s *CandleStore) PutCandles(_ context.Context, batches []quotehub.CandleBatch) error {
	for _, b := range batches {
		if !b.Interval.Valid() {
			return quotehub.Errorf(quotehub.EBadRequest, "candles of %s: invalid interval", b.Symbol)
		}
		for _, c := range b.Candles {
			if !c.Closed {
				return quotehub.Errorf(quotehub.EBadRequest, "candle %s at %d is not closed", b.CandleSeries, c.T)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batches {
		cur := s.series[b.CandleSeries]
		for _, c := range b.Candles {
			i, found := slices.BinarySearchFunc(cur, c.T, func(x quotehub.Candle, t int64) int { return cmpInt(x.T, t) })
			if !found {
				cur = slices.Insert(cur, i, c)
			}
		}
		s.series[b.CandleSeries] = cur
	}
	return nil
}

// Candles implements quotehub.CandleStore.
func (s *CandleStore) Candles(_ context.Context, series quotehub.CandleSeries, from, to time.Time) ([]quotehub.Candle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur := s.series[series]
	cmp := func(x quotehub.Candle, t int64) int { return cmpInt(x.T, t) }
	lo, _ := slices.BinarySearchFunc(cur, from.UnixMilli(), cmp)
	hi, _ := slices.BinarySearchFunc(cur, to.UnixMilli(), cmp)
	return slices.Clone(cur[lo:hi]), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CandleCache is the embedded quotehub.CandleCache. Expired chunks are
// dropped when read and swept on writes.
type CandleCache struct {
	mu     sync.Mutex
	now    func() time.Time
	chunks map[string]cachedChunk
	writes int
}

type cachedChunk struct {
	candles []quotehub.Candle
	expires time.Time
}

// NewCandleCache returns an empty CandleCache on the clock now (nil:
// time.Now).
func NewCandleCache(now func() time.Time) *CandleCache {
	if now == nil {
		now = time.Now
	}
	return &CandleCache{now: now, chunks: make(map[string]cachedChunk)}
}

// GetChunks implements quotehub.CandleCache.
func (c *CandleCache) GetChunks(_ context.Context, keys []string) ([][]quotehub.Candle, []bool, error) {
	now := c.now()
	out, ok := make([][]quotehub.Candle, len(keys)), make([]bool, len(keys))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		ch, hit := c.chunks[k]
		if !hit {
			continue
		}
		if !now.Before(ch.expires) {
			delete(c.chunks, k)
			continue
		}
		out[i], ok[i] = slices.Clone(ch.candles), true
	}
	return out, ok, nil
}

// PutChunk implements quotehub.CandleCache.
func (c *CandleCache) PutChunk(_ context.Context, key string, candles []quotehub.Candle, expireAt time.Time) error {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes++; c.writes%1024 == 0 {
		for k, ch := range c.chunks {
			if !now.Before(ch.expires) {
				delete(c.chunks, k)
			}
		}
	}
	if !now.Before(expireAt) {
		delete(c.chunks, key)
		return nil
	}
	c.chunks[key] = cachedChunk{candles: slices.Clone(candles), expires: expireAt}
	return nil
}
