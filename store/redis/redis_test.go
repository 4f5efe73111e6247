package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/store/redis"
	"quotehub/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testRedis returns a client of the real Redis the tests run against
// (QUOTEHUB_TEST_REDIS, default 127.0.0.1:6379) and a prefix no other test
// uses; the prefix's keys are deleted when the test ends. Without a Redis
// the test is skipped, except under CI=true, where it fails.
func testRedis(t *testing.T) (goredis.UniversalClient, string) {
	t.Helper()
	addr := os.Getenv("QUOTEHUB_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI=true (run scripts/services.sh): %v", addr, err)
		}
		t.Skipf("no Redis at %s (run scripts/services.sh): %v", addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "qhtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
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
