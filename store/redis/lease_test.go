package redis_test

import (
	"context"
	"fmt"
	"quotehub/internal/poll"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"

	"quotehub/store/redis"
)

type runningOwnership struct {
	*redis.Ownership
	cancel context.CancelFunc
	done   chan struct{}
}

func startOwnership(t *testing.T, rdb goredis.UniversalClient, prefix, node string, ttl time.Duration) *runningOwnership {
	t.Helper()
	return startOwnershipWith(t, rdb, redis.OwnershipOptions{Prefix: prefix, Node: node, Slots: 16, TTL: ttl})
}

func startOwnershipWith(t *testing.T, rdb goredis.UniversalClient, opts redis.OwnershipOptions) *runningOwnership {
	t.Helper()
	o := redis.NewOwnership(rdb, opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningOwnership{Ownership: o, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); o.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runningOwnership) stop() {
	r.cancel()
	<-r.done
}

// partitioned checks every slot is held by exactly one of the nodes, and
// returns how many each holds.
func partitioned(nodes []*runningOwnership) (bool, []int) {
	counts := make([]int, len(nodes))
	owner := map[int]int{}
	for i, n := range nodes {
		for _, s := range n.Held() {
			if _, dup := owner[s]; dup {
				return false, counts
			}
			owner[s] = i
			counts[i]++
		}
	}
	return len(owner) == 16, counts
}

func TestOwnershipSharesSlotsAndFailsOver(t *testing.T) {
	rdb, prefix := testRedis(t)
	ttl := 300 * time.Millisecond
	nodes := []*runningOwnership{
		startOwnership(t, rdb, prefix, "a", ttl),
		startOwnership(t, rdb, prefix, "b", ttl),
		startOwnership(t, rdb, prefix, "c", ttl),
	}
	balanced := func(ns []*runningOwnership) func() bool {
		return func() bool {
			ok, counts := partitioned(ns)
			if !ok {
				return false
			}
			lo, hi := counts[0], counts[0]
			for _, c := range counts {
				lo, hi = min(lo, c), max(hi, c)
			}
			return hi-lo <= 1
		}
	}
	poll.Until(t, 10*time.Second, "16 slots spread over 3 nodes", balanced(nodes))
	for i := range 50 {
		sym := fmt.Sprintf("SYM-%d", i)
		owners := 0
		for _, n := range nodes {
			if n.Owns(sym) {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("%s has %d owners", sym, owners)
		}
	}

	// A clean stop hands its slots over at once.
	nodes[2].stop()
	start := time.Now()
	poll.Until(t, 10*time.Second, "2 nodes to hold every slot", balanced(nodes[:2]))
	t.Logf("slots re-spread %s after a clean stop", time.Since(start))

	// A crash (no release: its client is gone) is taken over once the
	// leases expire (see TestOwnershipTakesADeadNodesSlotsAtExpiry).
	crashed := otherClient(goredis.Options{})
	d := startOwnership(t, crashed, prefix, "d", ttl)
	poll.Until(t, 10*time.Second, "d to get its share, every slot held once", func() bool {
		ok, _ := partitioned([]*runningOwnership{nodes[0], nodes[1], d})
		return ok && len(d.Held()) >= 5
	})
	crashed.Close() // d can neither renew nor release
	killed := time.Now()
	d.stop()
	poll.Until(t, 10*time.Second, "a and b to take d's slots", func() bool {
		ok, _ := partitioned(nodes[:2])
		return ok
	})
	if took := time.Since(killed); took > 2*ttl {
		t.Errorf("takeover took %s, want within about a lease period (%s)", took, ttl)
	} else {
		t.Logf("takeover after a crash: %s (lease %s)", took, ttl)
	}
}

// A node that cannot renew stops trusting its leases once the TTL has
// passed on its own clock, even though nothing told it it lost them.
func TestOwnershipStopsTrustingUnrenewedLeases(t *testing.T) {
	rdb, prefix := testRedis(t)
	client := otherClient(goredis.Options{MaxRetries: -1})
	o := startOwnership(t, client, prefix, "solo", 300*time.Millisecond)
	poll.Until(t, 5*time.Second, "all slots", func() bool { return len(o.Held()) == 16 })
	if !o.Owns("KRW-BTC") || !o.Connected() {
		t.Fatal("sole node does not own a symbol")
	}
	client.Close()
	poll.Until(t, 2*time.Second, "the leases to lapse", func() bool { return !o.Owns("KRW-BTC") })
	poll.Until(t, 2*time.Second, "the node to report it lost Redis", func() bool { return !o.Connected() })
	_ = rdb
}

// A node that stops cleanly releases its leases and nudges the others,
// which take the slots at once rather than at their next round (a second
// here: the lease is 3 s).
func TestOwnershipCleanStopHandsOverAtOnce(t *testing.T) {
	rdb, prefix := testRedis(t)
	const ttl = 3 * time.Second
	a := startOwnership(t, rdb, prefix, "a", ttl)
	b := startOwnership(t, rdb, prefix, "b", ttl)
	poll.Until(t, 15*time.Second, "16 slots over 2 nodes", func() bool {
		ok, counts := partitioned([]*runningOwnership{a, b})
		return ok && counts[0] == 8 && counts[1] == 8
	})
	stopped := time.Now()
	b.stop()
	poll.Until(t, 5*time.Second, "a to hold every slot", func() bool { return len(a.Held()) == 16 })
	took := time.Since(stopped)
	t.Logf("slots handed over %s after a clean stop (lease %s, rounds every %s)", took, ttl, ttl/3)
	if took >= ttl/3 {
		t.Errorf("hand-over took %s: not sooner than the next round (%s)", took, ttl/3)
	}
}

// When the shared state disappears (here: the prefix's keys deleted, as a
// FLUSHALL would), every node notices it at its next round through the
// epoch marker, calls OnStateLost once, counts it, and the slots are held
// again; the node that noticed first nudges the others.
func TestOwnershipNoticesLostState(t *testing.T) {
	rdb, prefix := testRedis(t)
	const ttl = 3 * time.Second
	var mu sync.Mutex
	calls := map[string]int{}
	var nodes []*runningOwnership
	metrics := map[string]*redis.Metrics{}
	changes := map[string]chan struct{}{}
	for _, name := range []string{"a", "b"} {
		m := redis.NewMetrics(nil)
		metrics[name] = m
		ch := make(chan struct{}, 1)
		changes[name] = ch
		nodes = append(nodes, startOwnershipWith(t, rdb, redis.OwnershipOptions{
			Prefix: prefix, Node: name, Slots: 16, TTL: ttl, Metrics: m,
			OnChange: func() {
				select {
				case ch <- struct{}{}:
				default:
				}
			},
			OnStateLost: func(ctx context.Context) {
				if ctx.Err() != nil {
					t.Errorf("OnStateLost of %s got a done context", name)
				}
				mu.Lock()
				calls[name]++
				mu.Unlock()
			},
		}))
	}
	poll.Until(t, 15*time.Second, "16 slots over 2 nodes", func() bool {
		ok, counts := partitioned(nodes)
		return ok && counts[0] == 8 && counts[1] == 8
	})
	ctx := context.Background()
	if n, _ := rdb.Exists(ctx, prefix+"epoch").Result(); n != 1 {
		t.Fatal("no epoch marker")
	}
	if err := deletePrefix(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	lostAt := time.Now()
	poll.Until(t, 2*ttl, "both nodes to notice the loss", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["a"] == 1 && calls["b"] == 1
	})
	noticed := time.Since(lostAt)
	poll.Until(t, 2*ttl, "every slot held again", func() bool { ok, _ := partitioned(nodes); return ok })
	t.Logf("both nodes noticed the lost state within %s and hold every slot again after %s (rounds every %s)",
		noticed, time.Since(lostAt), ttl/3)
	if noticed > ttl/3+ttl/6 {
		t.Errorf("noticed after %s, want within about a round (%s)", noticed, ttl/3)
	}
	for name, m := range metrics {
		if got := testutil.ToFloat64(m.StateLost); got != 1 {
			t.Errorf("%s counted the loss %v times, want 1", name, got)
		}
	}
	// Nothing more to notice: the new marker stands. Each round records
	// the node in the membership set (on Redis's clock) in the pipeline
	// that reads the marker, so a node's score moving twice means a whole
	// round ran after this point and checked the marker.
	nodesKey := redis.Keys{Prefix: prefix}.Nodes()
	for _, name := range []string{"a", "b"} {
		seen := []float64{rdb.ZScore(ctx, nodesKey, name).Val()}
		poll.Until(t, 4*ttl, "two more rounds of "+name, func() bool {
			if s := rdb.ZScore(ctx, nodesKey, name).Val(); s != seen[len(seen)-1] {
				seen = append(seen, s)
			}
			return len(seen) == 3
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["a"] != 1 || calls["b"] != 1 {
		t.Errorf("OnStateLost called %v, want once per node", calls)
	}
}

// The survivors of a crash do not wait for their next round once a dead
// node's leases expire: they watch the leases of a node that stopped
// heartbeating and run a round the moment they expire. Watched from
// Redis: the time between a lease disappearing and another node holding
// it is far less than a round (it would be anything up to a round, 300 ms
// here, without the wake).
func TestOwnershipTakesADeadNodesSlotsAtExpiry(t *testing.T) {
	rdb, prefix := testRedis(t)
	const ttl = 900 * time.Millisecond
	a := startOwnership(t, rdb, prefix, "a", ttl)
	crashed := otherClient(goredis.Options{MaxRetries: -1})
	d := startOwnership(t, crashed, prefix, "d", ttl)
	poll.Until(t, 15*time.Second, "8 slots each", func() bool {
		ok, counts := partitioned([]*runningOwnership{a, d})
		return ok && counts[0] == 8 && counts[1] == 8
	})
	slot := d.Held()[0]
	key := prefix + "lease:" + fmt.Sprint(slot)
	crashed.Close()
	killed := time.Now()
	ctx := context.Background()
	var gone, taken time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		v, err := rdb.Get(ctx, key).Result()
		now := time.Now()
		if err == goredis.Nil {
			if gone.IsZero() {
				gone = now
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(v) > 2 && v[:2] == "a|" {
			taken = now
			if gone.IsZero() {
				gone = now
			}
			break
		}
	}
	d.stop()
	if taken.IsZero() {
		t.Fatal("a never took the dead node's slot")
	}
	lag := taken.Sub(gone)
	t.Logf("slot %d: lease expired %s after the crash, taken over %s after it expired (rounds every %s)",
		slot, gone.Sub(killed).Round(time.Millisecond), lag.Round(time.Millisecond), ttl/3)
	if lag > ttl/6 {
		t.Errorf("taken over %s after the lease expired, want well within a round (%s)", lag, ttl/3)
	}
	poll.Until(t, 5*time.Second, "a to hold every slot", func() bool { return len(a.Held()) == 16 })
}
