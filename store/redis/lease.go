package redis

import (
	"context"
	cryptorand "crypto/rand"
	_ "embed"
	"encoding/hex"
	"sort"
	"strconv"
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

//go:embed lease_members.lua
var leaseMembersLua string

var (
	leaseRenew   = redis.NewScript(leaseRenewLua)
	leaseRelease = redis.NewScript(leaseReleaseLua)
	leaseMembers = redis.NewScript(leaseMembersLua)
)

// DefaultLeaseTTL is a slot lease's default time to live. With the default
// 1 s refresh interval a subscriber of a crashed node's symbol waits at most
// interval + TTL (+ a round trip and a fetch) for its next quote: 1.6 s.
const DefaultLeaseTTL = 600 * time.Millisecond

// OwnershipOptions configure Ownership. Zero values take the defaults.
type OwnershipOptions struct {
	Prefix string
	// Node is this node's id; it is part of every lease token.
	Node string
	// Slots is the number of refresh slots symbols hash onto. Every node
	// of a cluster must use the same number. Default 64.
	Slots int
	// TTL is a lease's time to live; holders renew every TTL/3, and a dead
	// holder's slots are taken over as soon as its leases expire: within
	// TTL of its last renewal. Every node of a cluster should use the same
	// TTL. Default DefaultLeaseTTL.
	TTL     time.Duration
	Metrics *Metrics
	Logger  *zerolog.Logger
	// OnChange, when set, is called after a round that changed the slots
	// this node holds (acquired, lost or released), so that the caller
	// looks at its symbols again at once. It must not block.
	OnChange func()
	// OnStateLost, when set, is called from the lease round when Redis
	// turns out to have lost the cluster's shared state (flushed,
	// restarted without persistence, failed over to an empty replica),
	// before this node takes leases again: the caller writes back what it
	// knows (its symbols' quotes, its part of the active set). ctx bounds
	// the work.
	OnStateLost func(ctx context.Context)
}

// Ownership decides which node refreshes which symbol: symbols hash onto
// Slots slots, each slot has a lease in Redis, and the live nodes share the
// slots evenly. Owns is cheap and local; Run keeps the leases.
//
// A lease is trusted only until its TTL (less a safety margin) has passed
// on this node's monotonic clock since the renewal was sent, so a node
// paused for longer than that stops refreshing before another node can
// take over; the cache's seq fence catches anything that still slips by.
//
// Every round (TTL/3) is one pipelined round trip: heartbeat in the
// membership set (on Redis's clock), read the epoch marker, renew the held
// leases, read every slot's holder. A slot whose holder stopped
// heartbeating is watched: the node asks for the lease's remaining time
// and runs its next round the moment it expires, so a crash is covered
// within one TTL rather than TTL plus a round. A node that releases leases
// (rebalancing, shutting down) publishes a nudge on a channel so the
// others take the slots at once.
type Ownership struct {
	rdb  redis.UniversalClient
	opts OwnershipOptions
	keys Keys
	log  zerolog.Logger
	warn zerolog.Logger // sampled: a failing round repeats every TTL/3

	mu      sync.RWMutex
	held    map[int]*lease
	lastOK  time.Time // last round that reached Redis
	started bool

	epoch string // the shared state's epoch as last seen; Run's goroutine only
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
		opts.TTL = DefaultLeaseTTL
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		l := zerolog.Nop()
		opts.Logger = &l
	}
	log := opts.Logger.With().Str("component", "leases").Logger()
	return &Ownership{rdb: rdb, opts: opts, keys: Keys{opts.Prefix}, held: map[int]*lease{},
		log: log, warn: log.Sample(&zerolog.BurstSampler{Burst: 2, Period: 10 * time.Second})}
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

// every is the period of the lease rounds.
func (o *Ownership) every() time.Duration { return o.opts.TTL / 3 }

// liveWindow is how recent a node's heartbeat must be for it to count as
// live. A live node heartbeats every round (TTL/3); a dead one drops out
// after half a TTL, so it is out of the share before its leases expire
// (one TTL after its last renewal) and its slots go to the others at once.
func (o *Ownership) liveWindow() time.Duration { return o.opts.TTL / 2 }

// Run keeps leases until ctx ends, then releases them so another node
// takes over at once.
func (o *Ownership) Run(ctx context.Context) {
	o.mu.Lock()
	o.started, o.lastOK = true, time.Now()
	o.mu.Unlock()
	nudges, stopListening := o.listen(ctx)
	defer stopListening()
	t := time.NewTicker(o.every())
	defer t.Stop()
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	for {
		next, err := o.round(ctx)
		if err != nil && ctx.Err() == nil {
			o.warn.Warn().Err(err).Msg("lease round failed")
		}
		if next > 0 {
			wake.Reset(next)
		}
		select {
		case <-ctx.Done():
			o.releaseAll()
			return
		case <-t.C:
		case <-nudges:
		case <-wake.C:
		}
	}
}

// listen subscribes to the other nodes' nudges (leases released, state
// lost). The returned channel holds at most one pending nudge.
func (o *Ownership) listen(ctx context.Context) (<-chan struct{}, func()) {
	nudges := make(chan struct{}, 1)
	ps := o.rdb.Subscribe(ctx, o.keys.LeaseEvents())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			if msg.Payload == o.opts.Node {
				continue
			}
			select {
			case nudges <- struct{}{}:
			default:
			}
		}
	}()
	return nudges, func() {
		_ = ps.Close()
		<-done
	}
}

// round registers this node as live, checks the shared state's epoch,
// renews its leases, reads who holds every slot, and acquires or releases
// slots towards an even share. It returns when the next round should run
// sooner than the ticker's (a dead node's leases about to expire), or 0.
func (o *Ownership) round(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, o.every())
	defer cancel()
	sent := time.Now()
	ttlMs := o.opts.TTL.Milliseconds()
	o.mu.RLock()
	held := make(map[int]string, len(o.held))
	for s, l := range o.held {
		held[s] = l.token
	}
	o.mu.RUnlock()

	var members *redis.Cmd
	var epoch *redis.StringCmd
	var renew map[int]*redis.Cmd
	gets := make([]*redis.StringCmd, o.opts.Slots)
	err := withScripts(func(useSha bool) []*redis.Cmd {
		renew = make(map[int]*redis.Cmd, len(held))
		_, _ = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			members = runScript(ctx, p, leaseMembers, useSha, []string{o.keys.Nodes()},
				o.opts.Node, o.liveWindow().Milliseconds(), 3*ttlMs)
			epoch = p.Get(ctx, o.keys.Epoch())
			for s, tok := range held {
				renew[s] = runScript(ctx, p, leaseRenew, useSha, []string{o.keys.Lease(s)}, tok, ttlMs)
			}
			for s := range gets {
				gets[s] = p.Get(ctx, o.keys.Lease(s))
			}
			return nil
		})
		cmds := []*redis.Cmd{members}
		for _, c := range renew {
			cmds = append(cmds, c)
		}
		return cmds
	})
	if err != nil {
		return 0, err
	}
	liveList, err := members.StringSlice()
	if err != nil {
		return 0, err
	}
	lost, err := o.checkEpoch(ctx, epoch)
	if err != nil {
		return 0, err
	}
	until := sent.Add(o.opts.TTL - o.opts.TTL/10)

	changed := false
	o.mu.Lock()
	o.lastOK = time.Now()
	dropped := 0
	for s, cmd := range renew {
		if n, _ := cmd.Int(); n == 1 {
			o.held[s].until = until
			continue
		}
		delete(o.held, s)
		dropped++
		changed = true
		o.opts.Metrics.LeaseChanges.WithLabelValues("lost").Inc()
		if !lost {
			o.log.Warn().Int("slot", s).Msg("lease lost")
		}
	}
	mine := len(o.held)
	o.mu.Unlock()

	if lost {
		o.opts.Metrics.StateLost.Inc()
		o.log.Warn().Int("leases_lost", dropped).
			Msg("Redis lost the cluster's shared state (flushed, restarted empty or failed over to an empty replica); rebuilding the active set, the cache of served symbols and the leases")
		if o.opts.OnStateLost != nil {
			wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), o.opts.TTL)
			o.opts.OnStateLost(wctx)
			wcancel()
		}
		o.nudge(ctx) // the others rebuild now rather than at their next round
	}

	// Who holds what, among live nodes.
	counts := map[string]int{o.opts.Node: 0}
	for _, n := range liveList {
		counts[n] = 0
	}
	var free, orphaned []int
	for s, g := range gets {
		v, err := g.Result()
		switch {
		case err == redis.Nil:
			free = append(free, s)
		case err != nil:
			return 0, err
		default:
			node, _, _ := strings.Cut(v, "|")
			if _, ok := counts[node]; ok {
				counts[node]++
			} else {
				orphaned = append(orphaned, s) // its holder stopped heartbeating
			}
		}
	}
	counts[o.opts.Node] = mine
	n := len(counts)
	lo := o.opts.Slots / n
	starved := false
	for _, c := range counts {
		starved = starved || c < lo
	}
	switch {
	case len(free) > 0:
		if o.acquire(ctx, assignFree(free, counts, o.opts.Node), ttlMs, until) {
			changed = true
		}
	case mine > lo && starved:
		o.release(ctx, mine-lo)
		changed = true
	}
	o.opts.Metrics.Leases.Set(float64(len(o.Held())))
	if changed && o.opts.OnChange != nil {
		o.opts.OnChange()
	}
	return o.expiryOf(ctx, orphaned), nil
}

// checkEpoch compares the epoch marker read in the round with the one this
// node knows. A marker that is gone, or replaced, means Redis lost the
// shared state since the last round; the first node to notice writes a new
// one. The first round of a node only learns the marker (or writes it).
func (o *Ownership) checkEpoch(ctx context.Context, cmd *redis.StringCmd) (lost bool, err error) {
	v, err := cmd.Result()
	switch {
	case err == redis.Nil:
		var get *redis.StringCmd
		_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SetNX(ctx, o.keys.Epoch(), o.opts.Node+"|"+randomHex(), 0)
			get = p.Get(ctx, o.keys.Epoch())
			return nil
		})
		if err != nil {
			return false, err
		}
		lost, o.epoch = o.epoch != "", get.Val()
		return lost, nil
	case err != nil:
		return false, err
	case o.epoch == "":
		o.epoch = v
		return false, nil
	default:
		lost, o.epoch = v != o.epoch, v
		return lost, nil
	}
}

// expiryOf returns how long until the first of the orphaned slots' leases
// expires (plus a small margin), or 0 when there are none.
func (o *Ownership) expiryOf(ctx context.Context, orphaned []int) time.Duration {
	if len(orphaned) == 0 {
		return 0
	}
	cmds := make([]*redis.DurationCmd, len(orphaned))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range orphaned {
			cmds[i] = p.PTTL(ctx, o.keys.Lease(s))
		}
		return nil
	})
	if err != nil {
		return 0
	}
	first, found := o.opts.TTL, false
	for _, c := range cmds {
		switch d := c.Val(); {
		case d == -1: // no TTL: not a lease this code wrote; the ticker's rounds will do
		case d < 0: // gone already
			first, found = 0, true
		default:
			first, found = min(first, d), true
		}
	}
	if !found {
		return 0
	}
	return first + 5*time.Millisecond
}

// assignFree decides which of the free slots node takes. Every node
// computes the same assignment from the same view: slots in order, each to
// the live node holding the fewest, ties broken by a rendezvous hash of
// node and slot. So nodes that see a dead node's slots at the same moment
// take different ones and end up even, instead of racing for the same.
func assignFree(free []int, counts map[string]int, node string) []int {
	nodes := make([]string, 0, len(counts))
	c := make(map[string]int, len(counts))
	for n, k := range counts {
		nodes = append(nodes, n)
		c[n] = k
	}
	sort.Strings(nodes)
	free = append([]int(nil), free...)
	sort.Ints(free)
	var mine []int
	for _, s := range free {
		best := ""
		var bestScore uint32
		for _, n := range nodes {
			score := shard.Hash(n + "|" + strconv.Itoa(s))
			if best == "" || c[n] < c[best] || c[n] == c[best] && score > bestScore {
				best, bestScore = n, score
			}
		}
		c[best]++
		if best == node {
			mine = append(mine, s)
		}
	}
	return mine
}

// acquire tries to take the given slots; it reports whether it took any.
func (o *Ownership) acquire(ctx context.Context, slots []int, ttlMs int64, until time.Time) bool {
	if len(slots) == 0 {
		return false
	}
	tokens := make([]string, len(slots))
	cmds := make([]*redis.BoolCmd, len(slots))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range slots {
			tokens[i] = o.opts.Node + "|" + randomHex()
			cmds[i] = p.SetNX(ctx, o.keys.Lease(s), tokens[i], time.Duration(ttlMs)*time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	took := false
	for i, s := range slots {
		if ok, _ := cmds[i].Result(); ok {
			o.held[s] = &lease{token: tokens[i], until: until}
			o.opts.Metrics.LeaseChanges.WithLabelValues("acquired").Inc()
			took = true
		}
	}
	return took
}

// release gives up n slots (the highest-numbered) and nudges the other
// nodes to take them at once; with leave, it also leaves the live set.
func (o *Ownership) release(ctx context.Context, n int) { o.releaseSlots(ctx, n, false) }

func (o *Ownership) releaseSlots(ctx context.Context, n int, leave bool) {
	held := o.Held()
	drop := held[len(held)-min(n, len(held)):]
	o.mu.Lock()
	tokens := make([]string, len(drop))
	for i, s := range drop {
		tokens[i] = o.held[s].token
		delete(o.held, s) // stop refreshing before anyone else may start
	}
	o.mu.Unlock()
	_ = withScripts(func(useSha bool) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(drop))
		_, _ = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range drop {
				cmds[i] = runScript(ctx, p, leaseRelease, useSha, []string{o.keys.Lease(s)}, tokens[i])
			}
			if leave {
				p.ZRem(ctx, o.keys.Nodes(), o.opts.Node)
			}
			p.Publish(ctx, o.keys.LeaseEvents(), o.opts.Node)
			return nil
		})
		return cmds
	})
	o.opts.Metrics.LeaseChanges.WithLabelValues("released").Add(float64(len(drop)))
}

// nudge makes the other nodes run a lease round now.
func (o *Ownership) nudge(ctx context.Context) {
	_ = o.rdb.Publish(ctx, o.keys.LeaseEvents(), o.opts.Node).Err()
}

// releaseAll hands every slot back on shutdown, leaves the live set and
// nudges the others, in one round trip.
func (o *Ownership) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o.releaseSlots(ctx, o.opts.Slots, true)
	o.opts.Metrics.Leases.Set(0)
}

// runScript queues script on p by its SHA, or with its body.
func runScript(ctx context.Context, p redis.Pipeliner, s *redis.Script, useSha bool, keys []string, args ...any) *redis.Cmd {
	if useSha {
		return s.EvalSha(ctx, p, keys, args...)
	}
	return s.Eval(ctx, p, keys, args...)
}

// withScripts runs a pipeline that calls scripts by SHA, and again with
// their bodies if Redis does not know them (a restarted or new server).
// It returns the first error of the script commands it is given back.
func withScripts(run func(useSha bool) []*redis.Cmd) error {
	cmds := run(true)
	if firstErr(cmds) != nil && isNoScript(firstErr(cmds)) {
		cmds = run(false)
	}
	return firstErr(cmds)
}

func firstErr(cmds []*redis.Cmd) error {
	for _, c := range cmds {
		if c == nil {
			continue
		}
		if err := c.Err(); err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}

func randomHex() string {
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}
