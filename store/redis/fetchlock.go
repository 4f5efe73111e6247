package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"quotehub"
)

var _ quotehub.FetchLock = (*FetchLock)(nil)

// FetchLock is a quotehub.FetchLock on SET NX PX: the first node to ask for
// a symbol's lock within ttl fetches it, the others wait for the cache.
type FetchLock struct {
	rdb     redis.UniversalClient
	keys    Keys
	node    string
	metrics *Metrics
}

// NewFetchLock returns the fetch locks under prefix; node names the holder.
func NewFetchLock(rdb redis.UniversalClient, prefix, node string, m *Metrics) *FetchLock {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &FetchLock{rdb: rdb, keys: Keys{prefix}, node: node, metrics: m}
}

// TryLock implements quotehub.FetchLock.
func (f *FetchLock) TryLock(ctx context.Context, symbol string, ttl time.Duration) (bool, error) {
	ok, err := f.rdb.SetNX(ctx, f.keys.Fetch(symbol), f.node, ttl).Result()
	switch {
	case err != nil:
		f.metrics.FetchLocks.WithLabelValues("error").Inc()
		return false, fmt.Errorf("redis fetch lock: %w", err)
	case ok:
		f.metrics.FetchLocks.WithLabelValues("acquired").Inc()
	default:
		f.metrics.FetchLocks.WithLabelValues("busy").Inc()
	}
	return ok, nil
}
