package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"quotehub"
	"quotehub/store/redis"
	"quotehub/store/redis/redistest"
)

// BenchmarkBusOnCluster publishes quotes through the bus of one client and
// receives them on another's (two nodes of a quotehub cluster), on a real
// Redis Cluster of 1 or 3 masters, with plain and sharded pub/sub. It
// reports the Redis CPU (user + sys, summed over the masters, and the
// busiest master's) per 100k quotes and the publish → receive latency.
//
//	go test ./store/redis -run '^$' -bench BusOnCluster -benchtime 200000x
func BenchmarkBusOnCluster(b *testing.B) {
	for _, masters := range []int{1, 3} {
		c := redistest.StartCluster(b, masters, 0)
		for _, sharded := range []bool{false, true} {
			name := fmt.Sprintf("masters=%d/%s", masters, map[bool]string{false: "pubsub", true: "sharded"}[sharded])
			b.Run(name, func(b *testing.B) { benchBus(b, c, sharded) })
		}
	}
}

func benchBus(b *testing.B, c *redistest.Cluster, sharded bool) {
	const symbols, batch = 1000, 100
	prefix := "bench" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	pubRDB, subRDB := c.Client(b), c.Client(b)
	pub := redis.NewBus(pubRDB, redis.BusOptions{Prefix: prefix, Sharded: sharded})
	sub := redis.NewBus(subRDB, redis.BusOptions{Prefix: prefix, Sharded: sharded})
	var mu sync.Mutex
	var lat []time.Duration
	received := 0
	done := make(chan struct{})
	sub.Handle(func(qs []quotehub.Quote) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		for _, q := range qs {
			if q.Source != "bench" {
				continue
			}
			lat = append(lat, time.Duration(now-int64(q.Seq)))
			received++
			if received == b.N {
				close(done)
			}
		}
	})
	ctx := context.Background()
	pub.Start(ctx)
	sub.Start(ctx)
	defer pub.Close()
	defer sub.Close()
	syms := make([]string, symbols)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYN-%06d", i+1)
		sub.Watch(syms[i])
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sub.Settle(sctx, syms...); err != nil {
		b.Fatal(err)
	}
	cpu0 := mastersCPU(b, pubRDB)
	b.ResetTimer()
	qs := make([]quotehub.Quote, 0, batch)
	for i := 0; i < b.N; i++ {
		qs = append(qs, quotehub.Quote{Symbol: syms[i%symbols], Price: 1, Currency: "KRW", TradeTime: 1763726400000,
			FetchedAt: 1763726400000, Seq: uint64(time.Now().UnixNano()), Source: "bench", Market: quotehub.MarketOpen})
		if len(qs) == batch || i == b.N-1 {
			if err := pub.Publish(ctx, qs); err != nil {
				b.Fatal(err)
			}
			qs = qs[:0]
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		mu.Lock()
		b.Fatalf("received %d of %d quotes", received, b.N)
	}
	b.StopTimer()
	cpu1 := mastersCPU(b, pubRDB)
	var total, busiest float64
	for addr, t1 := range cpu1 {
		d := t1 - cpu0[addr]
		total += d
		busiest = max(busiest, d)
	}
	per := 100000 / float64(b.N)
	b.ReportMetric(total*per, "redis-cpu-s/100k")
	b.ReportMetric(busiest*per, "busiest-master-cpu-s/100k")
	mu.Lock()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	mu.Unlock()
}

// mastersCPU returns used_cpu_user + used_cpu_sys of every master, in
// seconds.
func mastersCPU(b *testing.B, rdb *goredis.ClusterClient) map[string]float64 {
	out := map[string]float64{}
	var mu sync.Mutex
	err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, c *goredis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		var sum float64
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_user" || k == "used_cpu_sys" {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
		mu.Lock()
		out[c.Options().Addr] = sum
		mu.Unlock()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}
