// Package redistest gives tests the real Redis they run against, under a
// prefix of their own.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
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
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// The name lets a test drop its own connections (KillPubSub) without
	// touching those of tests running beside it on the same Redis.
	rdb = goredis.NewClient(&goredis.Options{Addr: Addr(), ClientName: "qhtest-" + id})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI=true (run scripts/services.sh): %v", Addr(), err)
		}
		t.Skipf("no Redis at %s (run scripts/services.sh): %v", Addr(), err)
	}
	prefix = "qhtest:" + id + ":"
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

// KillPubSub disconnects the pub/sub connections of rdb (a client from
// Open), as a Redis restart or a network cut would, and no one else's. It
// returns how many it killed.
func KillPubSub(t testing.TB, rdb *goredis.Client) int {
	t.Helper()
	name := rdb.Options().ClientName
	if name == "" {
		t.Fatal("KillPubSub: the client has no name; use a client from Open")
	}
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: Addr()})
	defer admin.Close()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		f := fields(line)
		if f["name"] != name || !strings.ContainsAny(f["flags"], "P") {
			continue
		}
		if err := admin.ClientKillByFilter(ctx, "ID", f["id"]).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", f["id"], err)
		}
		killed++
	}
	return killed
}

// fields parses one line of CLIENT LIST ("id=7 addr=... name=x ...").
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
