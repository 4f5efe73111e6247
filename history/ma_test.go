package history_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"quotehub/history"
)

// naiveSMA and naiveEMA recompute from scratch: the definitions the
// incremental versions must match.
func naiveSMA(xs []float64, n, i int) (float64, bool) {
	if i+1 < n {
		return 0, false
	}
	s := 0.0
	for _, x := range xs[i+1-n : i+1] {
		s += x
	}
	return s / float64(n), true
}

func naiveEMA(xs []float64, n, i int) (float64, bool) {
	if i+1 < n {
		return 0, false
	}
	e, _ := naiveSMA(xs, n, n-1)
	k := 2 / float64(n+1)
	for _, x := range xs[n : i+1] {
		e = x*k + e*(1-k)
	}
	return e, true
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// series returns closes of a random walk with gaps: periods where no trade
// happened have no candle, so they are simply absent from the values.
func series(seed uint64, length int) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	var xs []float64
	p := 50000.0
	for i := 0; len(xs) < length; i++ {
		p *= 1 + (r.Float64()-0.5)/50
		if r.IntN(5) == 0 {
			continue // a gap: no candle for this period
		}
		xs = append(xs, p)
	}
	return xs
}

func TestMovingAverages(t *testing.T) {
	for _, n := range []int{1, 2, 5, 12, 20, 26, 60, 120} {
		xs := series(uint64(n), 3000)
		sma, ema := history.NewSMA(n), history.NewEMA(n)
		for i, x := range xs {
			got, ok := sma.Add(x)
			want, wok := naiveSMA(xs, n, i)
			if ok != wok || (ok && !near(got, want)) {
				t.Fatalf("SMA(%d) at %d = %v,%v want %v,%v", n, i, got, ok, want, wok)
			}
			got, ok = ema.Add(x)
			want, wok = naiveEMA(xs, n, i)
			if ok != wok || (ok && !near(got, want)) {
				t.Fatalf("EMA(%d) at %d = %v,%v want %v,%v", n, i, got, ok, want, wok)
			}
		}
	}
}

func TestMovingAveragesFirstValues(t *testing.T) {
	sma, ema := history.NewSMA(3), history.NewEMA(3)
	for i, x := range []float64{10, 20, 30, 40} {
		s, sok := sma.Add(x)
		e, eok := ema.Add(x)
		switch i {
		case 0, 1:
			if sok || eok {
				t.Fatalf("value %d: averages before N values", i)
			}
		case 2:
			if !sok || s != 20 || !eok || e != 20 {
				t.Fatalf("third value: SMA %v %v, EMA %v %v; want 20 (EMA is seeded with the SMA)", s, sok, e, eok)
			}
		case 3:
			if s != 30 || e != 30 { // EMA: 20 + 0.5·(40−20)
				t.Fatalf("fourth value: SMA %v EMA %v, want 30 and 30", s, e)
			}
		}
	}
}
