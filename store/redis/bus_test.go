package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
	"quotehub/store/storetest"
)

type sink struct {
	mu  sync.Mutex
	got []quotehub.Quote
}

func (s *sink) deliver(qs []quotehub.Quote) {
	s.mu.Lock()
	s.got = append(s.got, qs...)
	s.mu.Unlock()
}

func (s *sink) seen(sym string, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.got {
		if q.Symbol == sym && q.Seq == seq {
			return true
		}
	}
	return false
}

func q(sym string, seq uint64) quotehub.Quote {
	return quotehub.Quote{Symbol: sym, Price: float64(seq), Currency: "KRW", TradeTime: 1763726400000 + int64(seq),
		FetchedAt: 1763726400000 + int64(seq), Seq: seq, Source: "test", Market: quotehub.MarketOpen}
}

// A watch confirmed after a quote was published still delivers that quote:
// the bus re-reads the cache once the subscription is in place.
func TestBusResyncsOnSubscribe(t *testing.T) {
	s := &sink{}
	rdb, prefix := testRedis(t)
	cache := redis.NewCache(rdb, prefix, 0)
	b := redis.NewBus(rdb, redis.BusOptions{Prefix: prefix, Cache: cache, Shards: 2})
	b.Handle(s.deliver)
	b.Start(context.Background())
	defer b.Close()
	ctx := context.Background()
	if _, err := cache.Put(ctx, q("KRW-BTC", 7)); err != nil {
		t.Fatal(err)
	}
	b.Watch("KRW-BTC")
	poll.Until(t, 5*time.Second, "the cached quote", func() bool { return s.seen("KRW-BTC", 7) })
}

// After Redis drops the subscriber connection, go-redis reconnects and
// subscribes again, and the bus re-reads what it may have missed.
func TestBusResyncsAfterReconnect(t *testing.T) {
	s := &sink{}
	rdb, prefix := testRedis(t)
	cache := redis.NewCache(rdb, prefix, 0)
	b := redis.NewBus(rdb, redis.BusOptions{Prefix: prefix, Cache: cache, Shards: 1})
	b.Handle(s.deliver)
	b.Start(context.Background())
	defer b.Close()
	ctx := context.Background()
	b.Watch("KRW-ETH")
	if err := b.Settle(ctx, "KRW-ETH"); err != nil {
		t.Fatal(err)
	}
	if n := redistest.KillPubSub(t, rdb.(*goredis.Client)); n == 0 {
		t.Fatal("no pub/sub connection of this bus to kill")
	}
	// Written while the subscriber may be away: published, maybe lost.
	if _, err := cache.Put(ctx, q("KRW-ETH", 9)); err != nil {
		t.Fatal(err)
	}
	_ = b.Publish(ctx, []quotehub.Quote{q("KRW-ETH", 9)})
	poll.Until(t, 10*time.Second, "seq 9 after the reconnect", func() bool { return s.seen("KRW-ETH", 9) })
	// And live messages flow again.
	poll.Until(t, 10*time.Second, "live delivery", func() bool {
		_ = b.Publish(ctx, []quotehub.Quote{q("KRW-ETH", 10)})
		return s.seen("KRW-ETH", 10)
	})
}

// Unwatch keeps the channel for the grace period, so flips cost nothing;
// after it, the channel is dropped.
func TestBusUnwatchGrace(t *testing.T) {
	s := &sink{}
	rdb, prefix := testRedis(t)
	b := redis.NewBus(rdb, redis.BusOptions{Prefix: prefix, Shards: 1, UnwatchGrace: 300 * time.Millisecond})
	b.Handle(s.deliver)
	b.Start(context.Background())
	defer b.Close()
	ctx := context.Background()
	ch := redis.Keys{Prefix: prefix}.Channel(0, "AAPL")
	subs := func() int64 {
		m, err := rdb.PubSubNumSub(ctx, ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m[ch]
	}
	b.Watch("AAPL")
	if err := b.Settle(ctx, "AAPL"); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		b.Unwatch("AAPL")
		b.Watch("AAPL")
	}
	b.Unwatch("AAPL")
	// Two round trips through the shard's worker and its pub/sub
	// connection: MSFT's subscription is confirmed once the worker has
	// taken the Unwatch; NVDA's is written in a later pass, after anything
	// that pass sent for AAPL, so Redis has handled that when it confirms.
	for _, sym := range []string{"MSFT", "NVDA"} {
		b.Watch(sym)
		if err := b.Settle(ctx, sym); err != nil {
			t.Fatal(err)
		}
	}
	if n := subs(); n != 1 {
		t.Fatalf("subscribers within the grace period = %d, want 1", n)
	}
	poll.Until(t, 5*time.Second, "the channel to be dropped", func() bool { return subs() == 0 })
}

// With Redis gone, Publish fails but still reaches this node's subscribers.
func TestBusPublishDeliversLocallyWhenRedisIsDown(t *testing.T) {
	s := &sink{}
	dead := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	b := redis.NewBus(dead, redis.BusOptions{Prefix: "qhtest:dead:", Shards: 1})
	b.Handle(s.deliver)
	err := b.Publish(context.Background(), []quotehub.Quote{q("KRW-XRP", 3)})
	if err == nil {
		t.Fatal("Publish to a dead Redis reported success")
	}
	if !s.seen("KRW-XRP", 3) {
		t.Fatal("the quote did not reach local subscribers")
	}
	if err := (redis.Health{RDB: dead}).Ready(context.Background()); err == nil {
		t.Fatal("Ready with Redis down reported no error")
	}
}

func TestFetchLock(t *testing.T) {
	rdb, prefix := testRedis(t)
	a := redis.NewFetchLock(rdb, prefix, "a", nil)
	b := redis.NewFetchLock(rdb, prefix, "b", nil)
	ctx := context.Background()
	if ok, err := a.TryLock(ctx, "KRW-BTC", 200*time.Millisecond); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "KRW-BTC", 200*time.Millisecond); ok || err != nil {
		t.Fatalf("second lock while held: %v %v", ok, err)
	}
	if ok, _ := b.TryLock(ctx, "KRW-ETH", 200*time.Millisecond); !ok {
		t.Fatal("another symbol's lock was busy")
	}
	// Redis expires the lock on its own clock: b gets it once that has run.
	poll.Until(t, 5*time.Second, "b to get the lock after it expired", func() bool {
		ok, err := b.TryLock(ctx, "KRW-BTC", 200*time.Millisecond)
		if err != nil {
			t.Fatalf("lock after expiry: %v", err)
		}
		return ok
	})
}

func TestUserBusConformance(t *testing.T) {
	storetest.TestUserBus(t, func(t *testing.T, deliver func(quotehub.UserEvent)) quotehub.UserBus {
		rdb, prefix := testRedis(t)
		b := startUserBus(t, rdb, prefix, deliver, nil)
		return b
	})
}

// startUserBus starts a user bus and waits until its subscription is in
// place (a published probe comes back), so no event of the test is sent
// before it listens.
func startUserBus(t *testing.T, rdb goredis.UniversalClient, prefix string, deliver func(quotehub.UserEvent), resync func()) *redis.UserBus {
	t.Helper()
	probe := make(chan struct{}, 1)
	probeUser := "probe-" + prefix
	b := redis.NewUserBus(rdb, prefix, nil)
	b.HandleUser(func(ev quotehub.UserEvent) {
		if ev.User == probeUser {
			select {
			case probe <- struct{}{}:
			default:
			}
			return
		}
		deliver(ev)
	})
	if resync != nil {
		b.OnResync(resync)
	}
	b.Start(context.Background())
	t.Cleanup(func() { _ = b.Close() })
	poll.Until(t, 5*time.Second, "the user bus to subscribe", func() bool {
		_ = b.PublishUser(context.Background(), quotehub.UserEvent{User: probeUser, Kind: "probe"})
		select {
		case <-probe:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	return b
}

// Every node of a cluster (one prefix) gets every user event; another
// cluster on the same Redis gets none; after a reconnection the bus asks
// for a resync and delivers again.
func TestUserBusAcrossNodes(t *testing.T) {
	rdb, prefix := testRedis(t)
	other, otherPrefix := testRedis(t)
	var mu sync.Mutex
	got := map[string][]string{}
	rec := func(node string) func(quotehub.UserEvent) {
		return func(ev quotehub.UserEvent) {
			mu.Lock()
			got[node] = append(got[node], ev.User+"/"+ev.Kind)
			mu.Unlock()
		}
	}
	resynced := make(chan struct{}, 1)
	a := startUserBus(t, rdb, prefix, rec("a"), func() {
		select {
		case resynced <- struct{}{}:
		default:
		}
	})
	startUserBus(t, rdb, prefix, rec("b"), nil)
	startUserBus(t, other, otherPrefix, rec("elsewhere"), nil)
	if err := a.PublishUser(context.Background(), quotehub.UserEvent{User: "alice", Kind: quotehub.UserAlertFired}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "both nodes to get the event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["a"]) == 1 && len(got["b"]) == 1
	})
	if n := redistest.KillPubSub(t, rdb.(*goredis.Client)); n < 2 {
		t.Fatalf("killed %d pub/sub connections, want the two nodes'", n)
	}
	select {
	case <-resynced:
	case <-time.After(10 * time.Second):
		t.Fatal("no resync after the subscription was re-made")
	}
	poll.Until(t, 10*time.Second, "delivery after the reconnection", func() bool {
		_ = a.PublishUser(context.Background(), quotehub.UserEvent{User: "bob", Kind: quotehub.UserListsChanged})
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got["a"], "bob/lists") && slices.Contains(got["b"], "bob/lists")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got["elsewhere"]) != 0 {
		t.Errorf("another cluster's bus got %v", got["elsewhere"])
	}
}

// Every shard of the bus delivers, with pub/sub and with sharded pub/sub:
// on a Redis Cluster the shards' hash tags fall on different masters, and
// a sharded subscription only hears a channel on the master serving its
// slot.
func TestBusShardsAcrossMasters(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "pubsub", true: "sharded-pubsub"}[sharded], func(t *testing.T) {
			s := &sink{}
			b := startBus(t, sharded, s.deliver, func(o *redis.BusOptions) { o.Shards = 16 })
			syms := make([]string, 48)
			for i := range syms {
				syms[i] = fmt.Sprintf("SYN-%06d", i+1)
				b.Watch(syms[i])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.Settle(ctx, syms...); err != nil {
				t.Fatal(err)
			}
			qs := make([]quotehub.Quote, len(syms))
			for i, sym := range syms {
				qs[i] = q(sym, 5)
			}
			if err := b.Publish(ctx, qs); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 5*time.Second, "every symbol's quote", func() bool {
				for _, sym := range syms {
					if !s.seen(sym, 5) {
						return false
					}
				}
				return true
			})
		})
	}
}

// The user bus reports its state: up once subscribed, down when the
// subscription is lost, up again (then a resync) once it is re-made.
func TestUserBusState(t *testing.T) {
	rdb, prefix := testRedis(t)
	states := make(chan bool, 16)
	resynced := make(chan struct{}, 4)
	b := redis.NewUserBus(rdb, prefix, nil)
	b.OnState(func(up bool) { states <- up })
	b.OnResync(func() { resynced <- struct{}{} })
	b.Start(context.Background())
	t.Cleanup(func() { _ = b.Close() })
	next := func(what string) bool {
		t.Helper()
		select {
		case up := <-states:
			return up
		case <-time.After(10 * time.Second):
			t.Fatalf("no state change (%s)", what)
			return false
		}
	}
	if !next("subscribing") {
		t.Fatal("the first state reported is down")
	}
	select {
	case <-resynced:
		t.Fatal("a resync on the first subscription")
	default:
	}
	if n := redistest.KillPubSub(t, rdb.(*goredis.Client)); n != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1", n)
	}
	if next("the subscription killed") {
		t.Fatal("up reported twice, with no down between")
	}
	if !next("resubscribing") {
		t.Fatal("down reported twice")
	}
	select {
	case <-resynced:
	case <-time.After(10 * time.Second):
		t.Fatal("no resync after the subscription was re-made")
	}
}
