// Package redistest gives tests the real Redis they run against, under a
// prefix of their own.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Addr is the test Redis: QUOTEHUB_TEST_REDIS, default 127.0.0.1:6379
// (scripts/services.sh makes sure one answers there).
func Addr() string {
	if a := os.Getenv("QUOTEHUB_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Open returns a client of the test Redis and a prefix no other test uses;
// the prefix's keys are deleted and the client closed when the test ends.
// Without a Redis the test is skipped, except under CI=true, where it
// fails: CI must never pass by skipping.
func Open(t testing.TB) (rdb *goredis.Client, prefix string) {
	t.Helper()
	rdb = goredis.NewClient(&goredis.Options{Addr: Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI=true (run scripts/services.sh): %v", Addr(), err)
		}
		t.Skipf("no Redis at %s (run scripts/services.sh): %v", Addr(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix = "qhtest:" + hex.EncodeToString(b[:]) + ":"
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
