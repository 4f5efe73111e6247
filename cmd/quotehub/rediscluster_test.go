package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/internal/shard"
	"quotehub/store/redis/redistest"
)

// TestRedisCluster runs real quotehub processes on a real Redis Cluster of
// three masters, each with a replica (started from the installed Redis 7
// for this test). With plain and with sharded pub/sub, a client on one
// node gets every watched symbol, whichever master serves its channel and
// whichever node refreshes it. Then the master serving a watched channel
// is killed: its replica takes over and quotes resume on the client.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and quotehub processes")
	}
	c := redistest.StartCluster(t, 3, 1)
	syms := synSymbols(12) // 12 symbols over 16 bus shards: channels on every master
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "pubsub", true: "sharded-pubsub"}[sharded], func(t *testing.T) {
			prefix := fmt.Sprintf("qhc%d:", time.Now().UnixNano())
			env := map[string]string{
				"QUOTEHUB_REDIS_URL": c.URL(), "QUOTEHUB_REDIS_CLUSTER": "true", "QUOTEHUB_REDIS_PREFIX": prefix,
				"QUOTEHUB_REDIS_SHARDED_PUBSUB": strconv.FormatBool(sharded), "QUOTEHUB_REFRESH_INTERVAL": "200ms",
				"QUOTEHUB_LEASE_TTL": "1s", "QUOTEHUB_HEARTBEAT": "500ms", "QUOTEHUB_SIM_EVERY_TICK": "true",
				"QUOTEHUB_SIM_SYMBOLS": "20",
			}
			a, b := startProc(t, "a", env), startProc(t, "b", env)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			recA, recB := record(ctx, t, a, syms), record(ctx, t, b, syms)
			flowing := func(r *recording, after time.Time, n int) func() bool {
				return func() bool {
					_, times, _ := r.snapshot()
					for _, s := range syms {
						k := 0
						for _, tm := range times[s] {
							if tm.After(after) {
								k++
							}
						}
						if k < n {
							return false
						}
					}
					return true
				}
			}
			start := time.Now()
			poll.Until(t, 20*time.Second, "5 updates of every symbol on node a", flowing(recA, start, 5))
			poll.Until(t, 20*time.Second, "5 updates of every symbol on node b", flowing(recB, start, 5))
			for _, r := range []*recording{recA, recB} {
				if _, _, errs := r.snapshot(); len(errs) > 0 {
					t.Fatalf("seq went back: %v", errs)
				}
			}
			if !sharded {
				return
			}

			// A master dies: the replica is promoted and quotes resume.
			channel := prefix + "quotes:{" + strconv.Itoa(shard.Of(syms[0], 16)) + "}:" + syms[0]
			victim := c.MasterOf(t, channel)
			c.Kill(t, victim)
			killed := time.Now()
			c.WaitPromoted(t, channel, victim, 30*time.Second)
			promoted := time.Since(killed)
			poll.Until(t, 30*time.Second, "every symbol to flow again on node b", flowing(recB, time.Now(), 3))
			t.Logf("master %s killed: a replica took over after %s, every symbol flowing on b after %s",
				victim, promoted.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
			for _, r := range []*recording{recA, recB} {
				if _, _, errs := r.snapshot(); len(errs) > 0 {
					t.Fatalf("seq went back: %v", errs)
				}
			}
		})
	}
}
