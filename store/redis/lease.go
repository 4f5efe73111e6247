package redis

import (
	"context"
	cryptorand "crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"quotehub/internal/shard"
)

//go:embed lease_renew.lua
var leaseRenewLua string

//go:embed lease_release.lua
var leaseReleaseLua string

var (
	leaseRenew   = redis.NewScript(leaseRenewLua)
	leaseRelease = redis.NewScript(leaseReleaseLua)
)

// OwnershipOptions configure Ownership. Zero values take the defaults.
type OwnershipOptions struct {
	Prefix string
	// Node is this node's id; it is part of every lease token.
	Node string
	// Slots is the number of refresh slots symbols hash onto. Every node
	// of a cluster must use the same number. Default 64.
	Slots int
	// TTL is a lease's time to live; holders renew every TTL/3, and a dead
	// holder's slots are taken over within TTL + TTL/3. Default 6 s.
	TTL     time.Duration
	Metrics *Metrics
	Logger  *zerolog.Logger
}

// Ownership decides which node refreshes which symbol: symbols hash onto
// Slots slots, each slot has a lease in Redis, and the live nodes share the
// slots evenly. Owns is cheap and local; Run keeps the leases.
//
// A lease is trusted only until its TTL (less a safety margin) has passed
// on this node's monotonic clock since the renewal was sent, so a node
// paused for longer than that stops refreshing before another node can
// take over; the cache's seq fence catches anything that still slips by.
type Ownership struct {
	rdb  redis.UniversalClient
	opts OwnershipOptions
	keys Keys
	log  zerolog.Logger

	mu      sync.RWMutex
	held    map[int]*lease
	lastOK  time.Time // last round that reached Redis
	started bool
}

type lease struct {
	token string
	until time.Time // trusted until, on the monotonic clock
}

// NewOwnership returns an Ownership; call Run to hold leases.
func NewOwnership(rdb redis.UniversalClient, opts OwnershipOptions) *Ownership {
	if opts.Slots <= 0 {
		opts.Slots = 64
	}
	if opts.TTL <= 0 {
		opts.TTL = 6 * time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		l := zerolog.Nop()
		opts.Logger = &l
	}
	return &Ownership{rdb: rdb, opts: opts, keys: Keys{opts.Prefix}, held: map[int]*lease{},
		log: opts.Logger.With().Str("component", "leases").Logger()}
}

// Slot returns the slot of a symbol.
func (o *Ownership) Slot(symbol string) int { return shard.Of(symbol, o.opts.Slots) }

// Owns reports whether this node holds a trusted lease on symbol's slot.
func (o *Ownership) Owns(symbol string) bool {
	slot := o.Slot(symbol)
	o.mu.RLock()
	defer o.mu.RUnlock()
	l := o.held[slot]
	return l != nil && time.Now().Before(l.until)
}

// Held returns the slots this node holds, sorted.
func (o *Ownership) Held() []int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]int, 0, len(o.held))
	for s := range o.held {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// Connected reports whether the last lease round (within one TTL) reached
// Redis. While it does not, the node holds no trusted lease and should
// refresh only what its own clients need.
func (o *Ownership) Connected() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return !o.started || time.Since(o.lastOK) < o.opts.TTL
}

// Run keeps leases until ctx ends, then releases them so another node
// takes over at once.
func (o *Ownership) Run(ctx context.Context) {
	o.mu.Lock()
	o.started, o.lastOK = true, time.Now()
	o.mu.Unlock()
	every := o.opts.TTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := o.round(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn().Err(err).Msg("lease round failed")
		}
		select {
		case <-ctx.Done():
			o.releaseAll()
			return
		case <-t.C:
		}
	}
}

// round registers this node as live, renews its leases, reads who holds
// every slot, and acquires or releases slots towards an even share.
func (o *Ownership) round(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.TTL/3)
	defer cancel()
	sent := time.Now()
	ttlMs := o.opts.TTL.Milliseconds()
	o.mu.RLock()
	held := make(map[int]string, len(o.held))
	for s, l := range o.held {
		held[s] = l.token
	}
	o.mu.RUnlock()

	var live *redis.ZSliceCmd
	renew := map[int]*redis.Cmd{}
	gets := make([]*redis.StringCmd, o.opts.Slots)
	nowMs := sent.UnixMilli()
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, o.keys.Nodes(), redis.Z{Score: float64(nowMs), Member: o.opts.Node})
		p.ZRemRangeByScore(ctx, o.keys.Nodes(), "-inf", fmt.Sprint(nowMs-3*ttlMs))
		// A node is live while its heartbeat is younger than one TTL: a dead
		// node drops out when its leases expire, so its slots are re-spread.
		live = p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: o.keys.Nodes(), Start: fmt.Sprint(nowMs - ttlMs), Stop: "+inf", ByScore: true})
		for s, tok := range held {
			renew[s] = leaseRenew.Eval(ctx, p, []string{o.keys.Lease(s)}, tok, ttlMs)
		}
		for s := range gets {
			gets[s] = p.Get(ctx, o.keys.Lease(s))
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return err
	}
	until := sent.Add(o.opts.TTL - o.opts.TTL/10)

	o.mu.Lock()
	o.lastOK = time.Now()
	for s, cmd := range renew {
		if n, _ := cmd.Int(); n == 1 {
			o.held[s].until = until
		} else {
			delete(o.held, s)
			o.opts.Metrics.LeaseChanges.WithLabelValues("lost").Inc()
			o.log.Warn().Int("slot", s).Msg("lease lost")
		}
	}
	mine := len(o.held)
	o.mu.Unlock()

	// Who holds what, among live nodes.
	liveNodes := map[string]int{o.opts.Node: 0}
	for _, z := range live.Val() {
		liveNodes[z.Member.(string)] = 0
	}
	var free []int
	for s, g := range gets {
		v, err := g.Result()
		switch {
		case err == redis.Nil:
			free = append(free, s)
		case err != nil:
			return err
		default:
			node, _, _ := strings.Cut(v, "|")
			if _, ok := liveNodes[node]; ok {
				liveNodes[node]++
			}
		}
	}
	liveNodes[o.opts.Node] = mine
	// An even share is lo or hi = lo+1 slots per live node. A node below hi
	// takes free slots; a node above lo gives slots back while some node is
	// below lo. Free slots nobody below hi could absorb (a dead node's,
	// before it drops out of the live set) are spread rather than left
	// without a refresher.
	n := len(liveNodes)
	lo, hi := o.opts.Slots/n, (o.opts.Slots+n-1)/n
	needSum, starved := 0, false
	for _, c := range liveNodes {
		needSum += max(hi-c, 0)
		starved = starved || c < lo
	}
	switch {
	case mine < hi || len(free) > needSum:
		want := max(hi-mine, 0)
		if extra := len(free) - needSum; extra > 0 {
			want += (extra + n - 1) / n
		}
		o.acquire(ctx, free, want, ttlMs, until)
	case mine > lo && starved:
		o.release(ctx, mine-lo)
	}
	o.opts.Metrics.Leases.Set(float64(len(o.Held())))
	return nil
}

func (o *Ownership) acquire(ctx context.Context, free []int, want int, ttlMs int64, until time.Time) {
	if want <= 0 || len(free) == 0 {
		return
	}
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	free = free[:min(want, len(free))]
	tokens := make([]string, len(free))
	cmds := make([]*redis.BoolCmd, len(free))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range free {
			tokens[i] = o.opts.Node + "|" + randomHex()
			cmds[i] = p.SetNX(ctx, o.keys.Lease(s), tokens[i], time.Duration(ttlMs)*time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, s := range free {
		if ok, _ := cmds[i].Result(); ok {
			o.held[s] = &lease{token: tokens[i], until: until}
			o.opts.Metrics.LeaseChanges.WithLabelValues("acquired").Inc()
		}
	}
}

// release gives up n slots (the highest-numbered).
func (o *Ownership) release(ctx context.Context, n int) {
	held := o.Held()
	if n <= 0 || len(held) == 0 {
		return
	}
	drop := held[len(held)-min(n, len(held)):]
	o.mu.Lock()
	tokens := make([]string, len(drop))
	for i, s := range drop {
		tokens[i] = o.held[s].token
		delete(o.held, s) // stop refreshing before anyone else may start
	}
	o.mu.Unlock()
	_, _ = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range drop {
			leaseRelease.Eval(ctx, p, []string{o.keys.Lease(s)}, tokens[i])
		}
		return nil
	})
	o.opts.Metrics.LeaseChanges.WithLabelValues("released").Add(float64(len(drop)))
}

// releaseAll hands every slot back on shutdown.
func (o *Ownership) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o.release(ctx, o.opts.Slots)
	_ = o.rdb.ZRem(ctx, o.keys.Nodes(), o.opts.Node).Err()
	o.opts.Metrics.Leases.Set(0)
}

func randomHex() string {
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}
