package redis_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
	"quotehub/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// onCluster, set by TestOnCluster while it runs the suites again, makes
// testRedis and otherClient hand out clients of a real Redis Cluster.
var onCluster *redistest.Cluster

// testRedis is the real Redis under a prefix of the test's own (or the
// cluster of TestOnCluster).
func testRedis(t *testing.T) (goredis.UniversalClient, string) {
	t.Helper()
	if onCluster != nil {
		return onCluster.Client(t), "qhtest:" + rand.Text()[:12] + ":"
	}
	return redistest.Open(t)
}

// otherClient is a second client of the same Redis (or cluster), for a
// node whose connection a test cuts; the caller closes it.
func otherClient(opts goredis.Options) goredis.UniversalClient {
	if onCluster != nil {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: onCluster.Addrs(), MaxRetries: opts.MaxRetries})
	}
	opts.Addr = redistest.Addr()
	return goredis.NewClient(&opts)
}

// deletePrefix deletes every key under prefix, on every master of a cluster.
func deletePrefix(ctx context.Context, rdb goredis.UniversalClient, prefix string) error {
	del := func(ctx context.Context, c goredis.UniversalClient) error {
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := c.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return del(ctx, c) })
	}
	return del(ctx, rdb)
}

func TestCacheConformance(t *testing.T) {
	storetest.TestCache(t, func(t *testing.T) quotehub.Cache {
		rdb, prefix := testRedis(t)
		return redis.NewCache(rdb, prefix, 0)
	})
}

func TestActiveSetConformance(t *testing.T) {
	storetest.TestActiveSet(t, func(t *testing.T) quotehub.ActiveSet {
		rdb, prefix := testRedis(t)
		return redis.NewActiveSet(rdb, prefix)
	})
}

func TestBusConformance(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		name := "pubsub"
		if sharded {
			name = "sharded-pubsub"
		}
		t.Run(name, func(t *testing.T) {
			storetest.TestBus(t, func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus {
				return startBus(t, sharded, deliver, nil)
			})
		})
	}
}

func startBus(t *testing.T, sharded bool, deliver func([]quotehub.Quote), mod func(*redis.BusOptions)) *redis.Bus {
	t.Helper()
	rdb, prefix := testRedis(t)
	opts := redis.BusOptions{Prefix: prefix, Sharded: sharded, Cache: redis.NewCache(rdb, prefix, 0), Shards: 4}
	if mod != nil {
		mod(&opts)
	}
	b := redis.NewBus(rdb, opts)
	b.Handle(deliver)
	b.Start(context.Background())
	t.Cleanup(func() { b.Close() })
	return b
}

func init() {
	// go-redis logs dial failures of the tests that point at a dead Redis;
	// keep test output for test failures.
	goredis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestCommandHookTimesRoundTrips(t *testing.T) {
	rdb, prefix := testRedis(t)
	m := redis.NewMetrics(nil)
	rdb.AddHook(m.Hook())
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Get(ctx, prefix+"k")
		p.Get(ctx, prefix+"k")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int{"command": 1, "pipeline": 1} {
		h := &dto.Metric{}
		if err := m.Commands.WithLabelValues(kind).(prometheus.Histogram).Write(h); err != nil {
			t.Fatal(err)
		}
		// A new connection's set-up (HELLO, CLIENT SETNAME) is timed too.
		if got := h.GetHistogram().GetSampleCount(); got < uint64(want) {
			t.Errorf("%s round trips observed %d, want at least %d", kind, got, want)
		}
	}
}
