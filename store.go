package quotehub

import (
	"context"
	"time"
)

// SymbolInfo is one entry of the catalogue.
type SymbolInfo struct {
	Symbol   string `json:"symbol"`
	Name     string `json:"name"`
	Exchange string `json:"exchange"`
	Currency string `json:"currency"`
}

// Catalog is the list of symbols the hub serves.
type Catalog interface {
	// Lookup returns the entry of a normalised symbol; ok is false when the
	// catalogue does not know it.
	Lookup(ctx context.Context, symbol string) (info SymbolInfo, ok bool, err error)
	// Search returns up to limit entries whose symbol or name contains q,
	// case-insensitively: symbol-prefix matches first, then the rest, each in
	// symbol order. An empty q lists the catalogue in symbol order.
	Search(ctx context.Context, q string, limit int) ([]SymbolInfo, error)
}

// Cache holds the latest quote of each symbol. Implementations are safe for
// concurrent use.
type Cache interface {
	// Get returns the cached quote of symbol; ok is false on a miss.
	Get(ctx context.Context, symbol string) (q Quote, ok bool, err error)
	// GetMany returns the cached quotes of symbols, in order; a missing
	// symbol has a zero Quote (empty Symbol).
	GetMany(ctx context.Context, symbols []string) ([]Quote, error)
	// Put stores q under a fence on Seq: a q.Seq greater than the stored one
	// replaces the value; an equal Seq only moves FetchedAt forward (the
	// value was confirmed); a lower Seq is refused. It reports whether
	// anything was written. The check and the write are atomic, so a slow
	// or paused writer can never move a symbol's Seq backwards.
	Put(ctx context.Context, q Quote) (written bool, err error)
	// PutMany is Put for several quotes (of different symbols) at once, in
	// one round trip where the store has round trips; written[i] answers
	// quotes[i]. Each quote is fenced on its own.
	PutMany(ctx context.Context, quotes []Quote) (written []bool, err error)
}

// Bus carries changed quotes from the refresher to the hub of every node.
type Bus interface {
	// Publish sends quotes to every node that watches their symbols.
	Publish(ctx context.Context, quotes []Quote) error
	// Watch and Unwatch tell the bus which symbols this node has local
	// subscribers for; a bus may deliver more than that. They must not block
	// on the network: they run on the hub's subscription path. A watch may
	// take effect a moment later; a bus that can miss quotes published in
	// that moment (or lost in transit) re-reads the watched symbols from the
	// cache and delivers them, and the hub drops what clients already have.
	Watch(symbol string)
	Unwatch(symbol string)
}

// ActiveSet records when each symbol was last used by anyone (a local
// subscription, a heartbeat for one, or an HTTP read). The refresher only
// refreshes symbols used within the active window.
type ActiveSet interface {
	// Touch marks symbols as used at t. A later touch of a symbol never
	// moves its time backwards.
	Touch(ctx context.Context, t time.Time, symbols ...string) error
	// Active returns the symbols used at or after since, in no particular order.
	Active(ctx context.Context, since time.Time) ([]string, error)
	// Prune forgets symbols last used before t.
	Prune(ctx context.Context, before time.Time) error
	// Recent returns up to limit symbols with their last use, the most
	// recently used first (for an operator's view of the set).
	Recent(ctx context.Context, limit int) ([]Touched, error)
}

// Touched is a symbol of the active set and when it was last used.
type Touched struct {
	Symbol string    `json:"symbol"`
	At     time.Time `json:"last_touch"`
}

// Provider fetches quotes from one upstream market-data API.
type Provider interface {
	// Name identifies the provider in quotes ("source"), logs and metrics.
	Name() string
	// MaxBatch is the most symbols one Fetch may carry.
	MaxBatch() int
	// Fetch returns the current quotes of symbols (normalised, known to the
	// catalogue, at most MaxBatch). It may return fewer quotes than symbols:
	// a symbol without a quote failed this time. A non-nil error with some
	// quotes is a partial failure; per-symbol reasons can be given with a
	// *FetchErrors. Implementations fill every field but Seq and FetchedAt.
	Fetch(ctx context.Context, symbols []string) ([]Quote, error)
}

// FetchErrors reports why some symbols of a Fetch got no quote.
type FetchErrors map[string]error

// Error implements the error interface.
func (e FetchErrors) Error() string {
	for sym, err := range e {
		if len(e) == 1 {
			return sym + ": " + err.Error()
		}
		return sym + ": " + err.Error() + " (and more)"
	}
	return "no errors"
}

// FetchLock makes a fetch single-flight across a cluster: only the node
// that takes a symbol's lock fetches it; the others wait for the value.
type FetchLock interface {
	// TryLock takes symbol's lock for ttl; ok is false if another node
	// holds it.
	TryLock(ctx context.Context, symbol string, ttl time.Duration) (ok bool, err error)
}

// HealthChecker is an optional capability of a store: Ready reports a
// dependency that stops the node from serving.
type HealthChecker interface {
	Ready(ctx context.Context) error
}

// Cache results of a read, as in the X-Cache header.
const (
	CacheHit   = "hit"
	CacheStale = "stale"
	CacheMiss  = "miss"
)

// Reading is the answer to one HTTP read of a quote.
type Reading struct {
	Quote Quote
	// Result is CacheHit, CacheStale or CacheMiss.
	Result string
	// Age is now − Quote.FetchedAt.
	Age time.Duration
	// MaxAge is what is left of the freshness window (all of it for a
	// closed market), for Cache-Control; zero when stale.
	MaxAge time.Duration
}

// Streamer is an optional capability of a Provider that can push quotes
// over a long-lived connection instead of being polled (Upbit's WebSocket).
// The refresher runs Stream, tells it which symbols to follow, writes every
// quote it emits through the same path as a polled one, and polls the
// symbols instead while Connected is false.
type Streamer interface {
	// Stream connects, follows the symbols last given to Follow, and calls
	// emit with the quotes it receives (every field but Seq and FetchedAt
	// set), reconnecting with backoff, until ctx ends. emit must not be
	// called after Stream returns.
	Stream(ctx context.Context, emit func([]Quote)) error
	// Follow replaces the set of followed symbols; it must not block.
	Follow(symbols []string)
	// Connected reports whether the stream is up and following.
	Connected() bool
}

// Seeder is an optional capability of a Provider whose quotes carry state
// of its own (the sim provider's random walk). In a cluster the node that
// takes over a symbol calls Seed with the symbol's cached quote before its
// first fetch, so the values continue from the last one the cluster served
// instead of from wherever this node's provider last left them. Seed must
// be safe for concurrent use with Fetch and ignore quotes it cannot use.
type Seeder interface {
	Seed(q Quote)
}

// Backoff is an upstream error that asks the caller to wait before the
// next request (a 429 with Retry-After, an Upbit 418 ban, an exhausted
// request budget).
type Backoff struct {
	Err   error
	After time.Duration
}

// Error implements the error interface.
func (b *Backoff) Error() string { return b.Err.Error() + " (retry after " + b.After.String() + ")" }

// Unwrap returns the underlying error.
func (b *Backoff) Unwrap() error { return b.Err }
