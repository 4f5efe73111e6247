package memory

import (
	"context"
	"sync"

	"quotehub"
	"quotehub/internal/shard"
)

var _ quotehub.Cache = (*Cache)(nil)

const cacheShards = 64

// Cache is an in-process quotehub.Cache, sharded by symbol so that writers of
// different symbols do not contend.
type Cache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]quotehub.Quote
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	c := &Cache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string]quotehub.Quote)
	}
	return c
}

func (c *Cache) shard(symbol string) *cacheShard {
	return &c.shards[shard.Of(symbol, cacheShards)]
}

// Get implements quotehub.Cache.
func (c *Cache) Get(_ context.Context, symbol string) (quotehub.Quote, bool, error) {
	s := c.shard(symbol)
	s.mu.RLock()
	q, ok := s.m[symbol]
	s.mu.RUnlock()
	return q, ok, nil
}

// GetMany implements quotehub.Cache.
func (c *Cache) GetMany(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	return c.AppendMany(ctx, make([]quotehub.Quote, 0, len(symbols)), symbols)
}

// AppendMany is GetMany appending the quotes to dst: a caller that reads
// often (a valued read) reuses its slice and allocates none.
func (c *Cache) AppendMany(ctx context.Context, dst []quotehub.Quote, symbols []string) ([]quotehub.Quote, error) {
	for _, sym := range symbols {
		q, _, _ := c.Get(ctx, sym)
		dst = append(dst, q)
	}
	return dst, nil
}

// Put implements quotehub.Cache.
func (c *Cache) Put(_ context.Context, q quotehub.Quote) (bool, error) {
	s := c.shard(q.Symbol)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[q.Symbol]
	switch {
	case !ok || q.Seq > old.Seq:
		s.m[q.Symbol] = q
		return true, nil
	case q.Seq == old.Seq && q.FetchedAt > old.FetchedAt:
		old.FetchedAt = q.FetchedAt
		s.m[q.Symbol] = old
		return true, nil
	default:
		return false, nil
	}
}

// PutMany implements quotehub.Cache.
func (c *Cache) PutMany(ctx context.Context, quotes []quotehub.Quote) ([]bool, error) {
	written := make([]bool, len(quotes))
	for i, q := range quotes {
		written[i], _ = c.Put(ctx, q)
	}
	return written, nil
}
