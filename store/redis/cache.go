package redis

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"quotehub"
)

var _ quotehub.Cache = (*Cache)(nil)

//go:embed cache_put.lua
var cachePutLua string

var cachePut = redis.NewScript(cachePutLua)

// DefaultQuoteTTL is how long a quote stays in Redis after its last write:
// long enough to serve a closed market's last close over a long weekend.
const DefaultQuoteTTL = 7 * 24 * time.Hour

// Cache is a quotehub.Cache in Redis. Each symbol is a hash with the
// quote's JSON (j), its seq (s) and its fetched_at (f); writes go through a
// Lua script that enforces the seq fence atomically.
type Cache struct {
	rdb      redis.UniversalClient
	keys     Keys
	ttl      string
	fallback quotehub.Cache
	onError  func(error)
}

// NewCache returns a cache under prefix. ttl ≤ 0 means DefaultQuoteTTL.
func NewCache(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultQuoteTTL
	}
	return &Cache{rdb: rdb, keys: Keys{prefix}, ttl: strconv.FormatInt(ttl.Milliseconds(), 10)}
}

// WithFallback makes the cache keep a local copy of everything it writes
// (and of what the caller feeds the fallback, such as quotes from the bus)
// and answer from it while Redis is unreachable. Writes that only reach
// the fallback succeed, so a node cut off from Redis keeps serving and
// pushing what it has; onError hears every Redis error that was hidden.
func (c *Cache) WithFallback(fallback quotehub.Cache, onError func(error)) *Cache {
	c.fallback, c.onError = fallback, onError
	return c
}

// Get implements quotehub.Cache.
func (c *Cache) Get(ctx context.Context, symbol string) (quotehub.Quote, bool, error) {
	qs, err := c.GetMany(ctx, []string{symbol})
	if err != nil {
		return quotehub.Quote{}, false, err
	}
	return qs[0], qs[0].Symbol != "", nil
}

// GetMany implements quotehub.Cache with one pipelined round trip.
func (c *Cache) GetMany(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	qs, err := c.getMany(ctx, symbols)
	if err != nil && c.fallback != nil {
		c.onError(err)
		return c.fallback.GetMany(ctx, symbols)
	}
	return qs, err
}

func (c *Cache) getMany(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	out := make([]quotehub.Quote, len(symbols))
	if len(symbols) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(symbols))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range symbols {
			cmds[i] = p.HMGet(ctx, c.keys.Quote(s), "j", "f")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w", err)
	}
	for i, cmd := range cmds {
		v := cmd.Val()
		j, _ := v[0].(string)
		f, _ := v[1].(string)
		if j == "" {
			continue
		}
		if err := json.Unmarshal([]byte(j), &out[i]); err != nil {
			return nil, fmt.Errorf("redis cache: stored quote of %s: %w", symbols[i], err)
		}
		if ms, err := strconv.ParseInt(f, 10, 64); err == nil {
			out[i].FetchedAt = ms
		}
	}
	return out, nil
}

// Put implements quotehub.Cache.
func (c *Cache) Put(ctx context.Context, q quotehub.Quote) (bool, error) {
	w, err := c.PutMany(ctx, []quotehub.Quote{q})
	if err != nil {
		return false, err
	}
	return w[0], nil
}

// PutMany implements quotehub.Cache: one pipelined round trip of the
// compare-and-set script.
func (c *Cache) PutMany(ctx context.Context, quotes []quotehub.Quote) ([]bool, error) {
	written, err := c.putMany(ctx, quotes)
	if c.fallback == nil {
		return written, err
	}
	local, ferr := c.fallback.PutMany(ctx, quotes)
	if err != nil {
		c.onError(err)
		return local, ferr
	}
	return written, nil
}

func (c *Cache) putMany(ctx context.Context, quotes []quotehub.Quote) ([]bool, error) {
	written := make([]bool, len(quotes))
	if len(quotes) == 0 {
		return written, nil
	}
	run := func(useSha bool) ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(quotes))
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range quotes {
				q := &quotes[i]
				keys := []string{c.keys.Quote(q.Symbol)}
				args := []any{q.Seq, q.FetchedAt, q.AppendJSON(nil), c.ttl}
				if useSha {
					cmds[i] = cachePut.EvalSha(ctx, p, keys, args...)
				} else {
					cmds[i] = cachePut.Eval(ctx, p, keys, args...)
				}
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run(true)
	if err != nil && isNoScript(err) {
		cmds, err = run(false) // the script cache was flushed (or this is a new server)
	}
	if err != nil {
		return nil, fmt.Errorf("redis cache put: %w", err)
	}
	for i, cmd := range cmds {
		n, _ := cmd.Int()
		written[i] = n == 1
	}
	return written, nil
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }
