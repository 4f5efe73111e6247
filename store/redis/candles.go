package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"quotehub"
)

var _ quotehub.CandleCache = (*CandleCache)(nil)

// CandleCache is a quotehub.CandleCache on Redis strings: each chunk is one
// key (prefix + the chunk key) holding its candles in a fixed binary
// layout, written with SET … PXAT so that every node sees it expire at the
// same instant. Reads pipeline one GET per key, so chunks of different
// slots can be read together on a Redis Cluster.
type CandleCache struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewCandleCache returns the candle cache under prefix.
func NewCandleCache(rdb redis.UniversalClient, prefix string) *CandleCache {
	return &CandleCache{rdb: rdb, prefix: prefix}
}

// candleSize is one encoded candle: t, o, h, l, c, v (8 bytes each) and
// the closed flag.
const candleSize = 6*8 + 1

// GetChunks implements quotehub.CandleCache.
func (c *CandleCache) GetChunks(ctx context.Context, keys []string) ([][]quotehub.Candle, []bool, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, c.prefix+k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("redis candle chunks: %w", err)
	}
	out, ok := make([][]quotehub.Candle, len(keys)), make([]bool, len(keys))
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("redis candle chunk %s: %w", keys[i], err)
		}
		cs, err := decodeCandles(b)
		if err != nil {
			continue // unreadable: a miss, refilled by the caller
		}
		out[i], ok[i] = cs, true
	}
	return out, ok, nil
}

// PutChunk implements quotehub.CandleCache.
func (c *CandleCache) PutChunk(ctx context.Context, key string, candles []quotehub.Candle, expireAt time.Time) error {
	if !time.Now().Before(expireAt) {
		return c.rdb.Del(ctx, c.prefix+key).Err()
	}
	err := c.rdb.SetArgs(ctx, c.prefix+key, encodeCandles(candles), redis.SetArgs{ExpireAt: expireAt}).Err()
	if err != nil {
		return fmt.Errorf("redis candle chunk %s: %w", key, err)
	}
	return nil
}

func encodeCandles(cs []quotehub.Candle) []byte {
	b := make([]byte, 0, len(cs)*candleSize)
	for _, x := range cs {
		b = binary.LittleEndian.AppendUint64(b, uint64(x.T))
		for _, f := range [...]float64{x.Open, x.High, x.Low, x.Close, x.V} {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
		closed := byte(0)
		if x.Closed {
			closed = 1
		}
		b = append(b, closed)
	}
	return b
}

func decodeCandles(b []byte) ([]quotehub.Candle, error) {
	if len(b)%candleSize != 0 {
		return nil, fmt.Errorf("candle chunk of %d bytes", len(b))
	}
	cs := make([]quotehub.Candle, len(b)/candleSize)
	for i := range cs {
		r := b[i*candleSize:]
		f := func(j int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(r[8*j:])) }
		cs[i] = quotehub.Candle{T: int64(binary.LittleEndian.Uint64(r)), Open: f(1), High: f(2), Low: f(3),
			Close: f(4), V: f(5), Closed: r[48] == 1}
	}
	return cs, nil
}
