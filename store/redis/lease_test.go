package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
)

type runningOwnership struct {
	*redis.Ownership
	cancel context.CancelFunc
	done   chan struct{}
}

func startOwnership(t *testing.T, rdb goredis.UniversalClient, prefix, node string, ttl time.Duration) *runningOwnership {
	t.Helper()
	o := redis.NewOwnership(rdb, redis.OwnershipOptions{Prefix: prefix, Node: node, Slots: 16, TTL: ttl})
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
	waitUntil(t, 10*time.Second, "16 slots spread over 3 nodes", balanced(nodes))
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
	waitUntil(t, 10*time.Second, "2 nodes to hold every slot", balanced(nodes[:2]))
	t.Logf("slots re-spread %s after a clean stop", time.Since(start))

	// A crash (no release: its client is gone) is taken over once the
	// leases expire: within two lease periods.
	crashed := goredis.NewClient(&goredis.Options{Addr: redistest.Addr()})
	d := startOwnership(t, crashed, prefix, "d", ttl)
	waitUntil(t, 10*time.Second, "d to get its share", func() bool { return len(d.Held()) >= 5 })
	ok, _ := partitioned([]*runningOwnership{nodes[0], nodes[1], d})
	if !ok {
		t.Fatal("slots not partitioned with d")
	}
	crashed.Close() // d can neither renew nor release
	killed := time.Now()
	d.stop()
	waitUntil(t, 10*time.Second, "a and b to take d's slots", func() bool {
		ok, _ := partitioned(nodes[:2])
		return ok
	})
	if took := time.Since(killed); took > 2*ttl {
		t.Errorf("takeover took %s, want within about two lease periods (%s)", took, 2*ttl)
	} else {
		t.Logf("takeover after a crash: %s (lease %s)", took, ttl)
	}
}

// A node that cannot renew stops trusting its leases once the TTL has
// passed on its own clock, even though nothing told it it lost them.
func TestOwnershipStopsTrustingUnrenewedLeases(t *testing.T) {
	rdb, prefix := testRedis(t)
	client := goredis.NewClient(&goredis.Options{Addr: redistest.Addr(), MaxRetries: -1})
	o := startOwnership(t, client, prefix, "solo", 300*time.Millisecond)
	waitUntil(t, 5*time.Second, "all slots", func() bool { return len(o.Held()) == 16 })
	if !o.Owns("KRW-BTC") || !o.Connected() {
		t.Fatal("sole node does not own a symbol")
	}
	client.Close()
	waitUntil(t, 2*time.Second, "the leases to lapse", func() bool { return !o.Owns("KRW-BTC") })
	waitUntil(t, 2*time.Second, "the node to report it lost Redis", func() bool { return !o.Connected() })
	_ = rdb
}
