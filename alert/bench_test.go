package alert

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkEvaluateNoneFire: 1,000,000 rules over 1,000 symbols (1,000
// each, thresholds spread ±20 % around the price), prices moving inside
// the band where none fires. The budget is ≤ 1 µs per change.
func BenchmarkEvaluateNoneFire(b *testing.B) {
	for _, perSymbol := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rules=%d×1000", perSymbol), func(b *testing.B) {
			e := New()
			rng := rand.New(rand.NewPCG(1, 1))
			syms := make([]string, 1000)
			kinds := []Kind{Above, Below, Cross, Move}
			id := int64(0)
			for i := range syms {
				syms[i] = fmt.Sprintf("SYN-%06d", i)
				for range perSymbol {
					k := kinds[rng.IntN(4)]
					r := Rule{ID: id, Symbol: syms[i], Kind: k}
					switch k {
					case Above:
						r.Threshold = 105 + rng.Float64()*15
					case Below:
						r.Threshold = 80 + rng.Float64()*15
					case Cross:
						r.Threshold = 105 + rng.Float64()*15
					case Move:
						r.Threshold = 6 + rng.Float64()*10
					}
					if err := e.Put(r); err != nil {
						b.Fatal(err)
					}
					id++
				}
				e.Evaluate(syms[i], 100, 100, t0) // cross rules take their side
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if f := e.Evaluate(syms[i%1000], 100+float64(i%7)*0.5, 100, t0); len(f) != 0 {
					b.Fatalf("fired %d", len(f))
				}
			}
		})
	}
}

// BenchmarkEvaluateFires: one of 1,000 rules of a symbol fires and re-arms
// on every other change (a price swinging across its line).
func BenchmarkEvaluateFires(b *testing.B) {
	e := New()
	for i := range 1000 {
		if err := e.Put(Rule{ID: int64(i), Symbol: "S", Kind: Above, Threshold: 1000 + float64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := 990.0
		if i%2 == 1 {
			p = 1000.5
		}
		e.Evaluate("S", p, 0, t0)
	}
}
