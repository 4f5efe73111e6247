package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"quotehub"
)

var _ quotehub.ActiveSet = (*ActiveSet)(nil)

// ActiveSet is a quotehub.ActiveSet in one Redis sorted set (member: symbol,
// score: last use in Unix ms). Every node writes its own clock; the active
// window (minutes) is far larger than the skew of synchronised clocks.
type ActiveSet struct {
	rdb  redis.UniversalClient
	keys Keys
}

// NewActiveSet returns the active set under prefix.
func NewActiveSet(rdb redis.UniversalClient, prefix string) *ActiveSet {
	return &ActiveSet{rdb: rdb, keys: Keys{prefix}}
}

// Touch implements quotehub.ActiveSet with one ZADD GT, however many
// symbols: a touch never moves a symbol's time backwards.
func (a *ActiveSet) Touch(ctx context.Context, t time.Time, symbols ...string) error {
	if len(symbols) == 0 {
		return nil
	}
	ms := float64(t.UnixMilli())
	members := make([]redis.Z, len(symbols))
	for i, s := range symbols {
		members[i] = redis.Z{Score: ms, Member: s}
	}
	if err := a.rdb.ZAddGT(ctx, a.keys.Active(), members...).Err(); err != nil {
		return fmt.Errorf("redis active set touch: %w", err)
	}
	return nil
}

// Active implements quotehub.ActiveSet.
func (a *ActiveSet) Active(ctx context.Context, since time.Time) ([]string, error) {
	out, err := a.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: a.keys.Active(), Start: strconv.FormatInt(since.UnixMilli(), 10), Stop: "+inf", ByScore: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis active set read: %w", err)
	}
	return out, nil
}

// Prune implements quotehub.ActiveSet.
func (a *ActiveSet) Prune(ctx context.Context, before time.Time) error {
	err := a.rdb.ZRemRangeByScore(ctx, a.keys.Active(), "-inf", "("+strconv.FormatInt(before.UnixMilli(), 10)).Err()
	if err != nil {
		return fmt.Errorf("redis active set prune: %w", err)
	}
	return nil
}

// Recent implements quotehub.ActiveSet with one ZRANGE REV WITHSCORES.
func (a *ActiveSet) Recent(ctx context.Context, limit int) ([]quotehub.Touched, error) {
	if limit <= 0 {
		return nil, nil
	}
	zs, err := a.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: a.keys.Active(), Start: 0, Stop: limit - 1, Rev: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis active set recent: %w", err)
	}
	out := make([]quotehub.Touched, len(zs))
	for i, z := range zs {
		sym, _ := z.Member.(string)
		out[i] = quotehub.Touched{Symbol: sym, At: time.UnixMilli(int64(z.Score))}
	}
	return out, nil
}
