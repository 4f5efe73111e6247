package refresher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"quotehub"
	"quotehub/alert"
	"quotehub/store/memory"
)

// BenchmarkWriteWithAlerts measures the refresher's write path (validate,
// seq, cache write, publish) for batches of 100 changed quotes of 1,000
// symbols, without an alert hook and with one that evaluates every change
// against 1,000,000 rules (1,000 per symbol, thresholds 5–20 % away, so
// none fires), as the node wires it. The difference per quote is what
// alerts add to a price change.
func BenchmarkWriteWithAlerts(b *testing.B) {
	const nsyms, batch = 1000, 100
	syms := make([]string, nsyms)
	var catalog []quotehub.SymbolInfo
	for i := range syms {
		syms[i] = fmt.Sprintf("SYN-%06d", i)
		catalog = append(catalog, quotehub.SymbolInfo{Symbol: syms[i], Exchange: quotehub.ExchangeUpbit, Currency: "KRW"})
	}
	engine := func(perSymbol int) *alert.Engine {
		e := alert.New()
		rng := rand.New(rand.NewPCG(1, 1))
		kinds := []alert.Kind{alert.Above, alert.Below, alert.Cross, alert.Move}
		id := int64(1)
		for _, s := range syms {
			for range perSymbol {
				k := kinds[rng.IntN(4)]
				r := alert.Rule{ID: id, User: "u", Symbol: s, Kind: k}
				switch k {
				case alert.Above, alert.Cross:
					r.Threshold = 105 + rng.Float64()*15
				case alert.Below:
					r.Threshold = 80 + rng.Float64()*15
				case alert.Move:
					r.Threshold = 6 + rng.Float64()*10
				}
				if err := e.Put(r); err != nil {
					b.Fatal(err)
				}
				id++
			}
			e.Seed(s, 100, 100)
		}
		return e
	}
	for _, tc := range []struct {
		name  string
		rules int // per symbol; -1: no hook
	}{{"no-hook", -1}, {"rules=0", 0}, {"rules=1000x1000", 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			var hook func([]quotehub.Quote)
			if tc.rules >= 0 {
				e := engine(tc.rules)
				hook = func(qs []quotehub.Quote) {
					for i := range qs {
						q := &qs[i]
						if f := e.Evaluate(q.Symbol, q.Price, q.PrevClose, time.UnixMilli(q.FetchedAt)); len(f) != 0 {
							b.Fatalf("fired %d", len(f))
						}
					}
				}
			}
			r, err := New(Options{
				Cache: memory.NewCache(), Bus: memory.NewBus(), Active: memory.NewActiveSet(), Catalog: memory.NewCatalog(catalog),
				Sources:   []Source{{Provider: &countingProvider{syms: map[string]int{}}, Interval: time.Second}},
				OnChanged: hook,
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			all := func(string) bool { return true }
			qs := make([]quotehub.Quote, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for j := range qs {
					// Each round moves every price (so each is a change)
					// inside the band where no rule fires.
					qs[j] = quotehub.Quote{Symbol: syms[(i*batch+j)%nsyms], Price: 100 + float64(i%7)*0.5, PrevClose: 100,
						Has: quotehub.HasPrevClose, Currency: "KRW", TradeTime: 1763726400123, Source: "counting", Market: quotehub.MarketOpen}
				}
				if _, err := r.write(ctx, "counting", qs, all); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/quote")
		})
	}
}
