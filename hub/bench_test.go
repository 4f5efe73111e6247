package hub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/hub"
	"quotehub/store/memory"
)

// discard is a transport that counts and drops what it is given; its
// non-blocking write always takes everything, so the writer pool writes it.
type discard struct{ quotes atomic.Int64 }

func (d *discard) Write(_ [][]byte, qs []*hub.Update) error { d.quotes.Add(int64(len(qs))); return nil }
func (d *discard) TryWrite(c [][]byte, qs []*hub.Update) (bool, error) {
	return true, d.Write(c, qs)
}
func (d *discard) FinishWrite() error { return nil }
func (d *discard) Abort(int, string)  {}

func benchSymbols(n int) []quotehub.SymbolInfo {
	out := make([]quotehub.SymbolInfo, n)
	for i := range out {
		out[i] = quotehub.SymbolInfo{Symbol: fmt.Sprintf("SYM-%05d", i), Exchange: "SIM", Currency: "USD"}
	}
	return out
}

// BenchmarkPublishFanout measures the publish path for one update of one
// symbol to N subscribers whose writers run and drain concurrently: the
// encode-once, offer-to-every-subscriber hot path. ns/op is per update.
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := hub.New(hub.Options{Cache: memory.NewCache(), Catalog: memory.NewCatalog(benchSymbols(1)), MaxConnections: n + 1})
			var sinks []*discard
			var clients []*hub.Client
			for range n {
				d := &discard{}
				c := h.NewClient(d, "ws")
				c.Attach(context.Background(), []string{"SYM-00000"})
				c.StartOnDemand(func(error) {})
				sinks, clients = append(sinks, d), append(clients, c)
			}
			q := quotehub.Quote{Symbol: "SYM-00000", Price: 100, Currency: "USD", TradeTime: 1763726400000, Source: "bench", Market: "open"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				q.Seq = uint64(i + 1)
				q.FetchedAt = time.Now().UnixMilli()
				h.Publish([]quotehub.Quote{q})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "offers/s")
			for _, c := range clients {
				c.Close() // after its writer, if one runs
			}
			var delivered int64
			for _, d := range sinks {
				delivered += d.quotes.Load()
			}
			b.ReportMetric(float64(delivered)/float64(b.N*n), "delivered/offered")
			_ = h.Shutdown(context.Background())
		})
	}
}

// BenchmarkOfferConflation measures offers to a client whose writer is
// stuck (a slow client): every offer replaces the pending quote.
func BenchmarkOfferConflation(b *testing.B) {
	h := hub.New(hub.Options{Cache: memory.NewCache(), Catalog: memory.NewCatalog(benchSymbols(100))})
	defer h.Shutdown(context.Background())
	c := h.NewClient(&discard{}, "ws") // no writer started: nothing drains
	defer c.Close()
	syms := make([]string, 100)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM-%05d", i)
	}
	c.Attach(context.Background(), syms)
	qs := make([]quotehub.Quote, len(syms))
	for i, s := range syms {
		qs[i] = quotehub.Quote{Symbol: s, Price: 1, Currency: "USD", TradeTime: 1763726400000, Source: "bench", Market: "open"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		qs[i%len(qs)].Seq = uint64(i + 1)
		h.Publish(qs[i%len(qs) : i%len(qs)+1])
	}
}

// BenchmarkSubscribeUnsubscribe measures registry churn from parallel
// clients on many symbols (the sharded registry under contention).
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	h := hub.New(hub.Options{Cache: memory.NewCache(), Catalog: memory.NewCatalog(benchSymbols(1000)), OpsPerSecond: 1e9, OpsBurst: 1e9})
	defer h.Shutdown(context.Background())
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := h.NewClient(&discard{}, "ws")
		defer c.Close()
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			s := fmt.Sprintf("SYM-%05d", i%1000)
			c.Attach(context.Background(), []string{s})
			_ = c.Unsubscribe(nil, []string{s})
			i++
		}
	})
}
