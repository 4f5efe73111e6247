// Package redis implements quotehub's shared stores on Redis with
// github.com/redis/go-redis/v9: the cache (a hash per symbol, written by a
// Lua compare-and-set on seq), the active set (one sorted set of last-use
// times), the bus (pub/sub, one channel per symbol, optionally sharded
// pub/sub), slot leases that decide which node refreshes which symbol, and
// fetch locks for cluster-wide single flight.
//
// Every key and channel starts with a configurable prefix, so several
// clusters, and parallel tests, can share one Redis. Names are hash-tagged
// so that Redis Cluster works: a symbol's cache key is tagged with the
// symbol, and the channels of one bus shard share a tag so that one
// subscriber connection per shard receives them all.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"quotehub"
)

// Keys builds the names of every key and channel under one prefix.
type Keys struct{ Prefix string }

// Quote is the hash holding a symbol's latest quote.
func (k Keys) Quote(symbol string) string { return k.Prefix + "quote:{" + symbol + "}" }

// Active is the sorted set of symbol → last use (Unix ms).
func (k Keys) Active() string { return k.Prefix + "active" }

// Nodes is the sorted set of node id → last heartbeat (Unix ms).
func (k Keys) Nodes() string { return k.Prefix + "nodes" }

// Lease is the lease of one refresh slot.
func (k Keys) Lease(slot int) string { return k.Prefix + "lease:" + strconv.Itoa(slot) }

// Epoch is the marker of the shared state: written once, it disappears
// only when Redis loses everything (a flush, a restart without
// persistence, a failover to an empty replica), which the lease round
// notices.
func (k Keys) Epoch() string { return k.Prefix + "epoch" }

// LeaseEvents is the channel on which a node that released leases (or
// noticed the shared state was lost) nudges the others to run a lease
// round at once.
func (k Keys) LeaseEvents() string { return k.Prefix + "leases" }

// Fetch is the cluster-wide single-flight lock of a symbol's fetch.
func (k Keys) Fetch(symbol string) string { return k.Prefix + "fetch:{" + symbol + "}" }

// Channel is the pub/sub channel of a symbol; shard is its bus shard, which
// is the channel's hash tag.
func (k Keys) Channel(shard int, symbol string) string {
	return k.Prefix + "quotes:{" + strconv.Itoa(shard) + "}:" + symbol
}

// symbolOf returns the symbol of a channel name built by Channel.
func (k Keys) symbolOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, k.Prefix+"quotes:{")
	if !ok {
		return "", false
	}
	_, sym, ok := strings.Cut(rest, "}:")
	return sym, ok
}

// Dial returns a client for a redis:// or rediss:// URL (a cluster client
// when cluster is set: redis://host:port?addr=host2:port2…) without
// talking to the server; only a URL that does not parse is an error.
func Dial(url string, cluster bool) (redis.UniversalClient, error) {
	if cluster {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis cluster URL: %w", err)
		}
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	return redis.NewClient(opts), nil
}

// ErrUnreachable wraps the error of a Redis that did not answer Connect.
var ErrUnreachable = errors.New("redis unreachable")

// Connect is Dial plus a PING within timeout. If the server does not
// answer, it returns the client anyway with an error wrapping
// ErrUnreachable, so the caller may go on (go-redis keeps reconnecting).
func Connect(ctx context.Context, url string, cluster bool, timeout time.Duration) (redis.UniversalClient, error) {
	rdb, err := Dial(url, cluster)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return rdb, fmt.Errorf("%w at %s: %w", ErrUnreachable, redactURL(url), err)
	}
	return rdb, nil
}

// redactURL hides a password in a URL for error messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return u
}

// Health reports whether Redis answers; it implements
// quotehub.HealthChecker for /readyz.
type Health struct{ RDB redis.UniversalClient }

var _ quotehub.HealthChecker = Health{}

// Ready implements quotehub.HealthChecker.
func (h Health) Ready(ctx context.Context) error { return h.RDB.Ping(ctx).Err() }
