package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the ceil(q*n)-th smallest value of sorted.
func exactQuantile(sorted []int64, q float64) float64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return float64(sorted[rank-1])
}

func checkQuantiles(t *testing.T, name string, h *Hist, vals []int64) {
	t.Helper()
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	if h.Count() != uint64(len(vals)) {
		t.Errorf("%s: count %d, want %d", name, h.Count(), len(vals))
	}
	for _, q := range []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999} {
		want := exactQuantile(sorted, q)
		got := h.Quantile(q)
		// 1 % relative, or one unit for tiny values (exact buckets).
		if math.Abs(got-want) > math.Max(0.01*want, 1) {
			t.Errorf("%s: p%g = %.1f, want %.1f (±1%%)", name, q*100, got, want)
		}
	}
	if h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] {
		t.Errorf("%s: min/max %d/%d, want %d/%d", name, h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
	}
	if h.Quantile(1) != float64(sorted[len(sorted)-1]) || h.Quantile(0) != float64(sorted[0]) {
		t.Errorf("%s: q0/q1 not exact", name)
	}
}

func TestHistDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform 1µs..1s":      func() int64 { return 1 + r.Int64N(1_000_000) },
		"exponential mean 5ms": func() int64 { return int64(r.ExpFloat64() * 5000) },
		"lognormal ~1ms":       func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 7)) },
		"small integers":       func() int64 { return r.Int64N(300) },
		"wide 1µs..60s":        func() int64 { return int64(math.Exp(r.Float64() * math.Log(HistMax))) },
	}
	for name, gen := range dists {
		var h Hist
		vals := make([]int64, 200_000)
		for i := range vals {
			vals[i] = gen()
			h.Record(vals[i])
		}
		checkQuantiles(t, name, &h, vals)
	}
}

func TestHistBucketsContiguous(t *testing.T) {
	prevLow, prevWidth := histBounds(0)
	if prevLow != 0 || prevWidth != 1 {
		t.Fatalf("bucket 0 = %d+%d", prevLow, prevWidth)
	}
	for i := 1; i <= histIndex(HistMax); i++ {
		low, width := histBounds(i)
		if low != prevLow+prevWidth {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, low, prevLow+prevWidth)
		}
		if histIndex(low) != i || histIndex(low+width-1) != i {
			t.Fatalf("bucket %d [%d,%d) does not map back", i, low, low+width)
		}
		if i >= 2*histSub && float64(width)/float64(low) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d too wide: %d at %d", i, width, low)
		}
		prevLow, prevWidth = low, width
	}
}

func TestHistMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, merged Hist
	var vals []int64
	parts := make([]Hist, 7)
	for p := range parts {
		// Each part sees a different range, so merging must grow both ways.
		base := int64(10) << (3 * p)
		for range 5000 {
			v := base + r.Int64N(base)
			vals = append(vals, v)
			parts[p].Record(v)
			all.Record(v)
		}
	}
	for _, p := range []int{3, 0, 6, 1, 5, 2, 4} {
		merged.Merge(&parts[p])
	}
	merged.Merge(&Hist{}) // empty: no-op
	merged.Merge(nil)
	checkQuantiles(t, "merged", &merged, vals)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("p%g: merged %.1f, direct %.1f", q*100, merged.Quantile(q), all.Quantile(q))
		}
	}
	if merged.Mean() != all.Mean() && math.Abs(merged.Mean()-all.Mean()) > 1e-6*all.Mean() {
		t.Errorf("mean %f vs %f", merged.Mean(), all.Mean())
	}
}

func TestHistEdges(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 || h.Count() != 0 || h.Mean() != 0 {
		t.Error("empty hist not zero")
	}
	h.Record(-5)
	h.Record(HistMax * 10)
	if h.Min() != 0 || h.Max() != HistMax*10 || h.Overflow() != 1 {
		t.Errorf("min %d max %d overflow %d", h.Min(), h.Max(), h.Overflow())
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("p50 = %f", got)
	}
	if got := h.Quantile(0.99); got < HistMax*0.99 {
		t.Errorf("p99 = %f", got)
	}
	var one Hist
	one.Record(1234)
	if one.Quantile(0.5) != 1234 || one.Quantile(0.999) != 1234 {
		t.Errorf("single value: %f", one.Quantile(0.5))
	}
}

func BenchmarkHistRecord(b *testing.B) {
	var h Hist
	var v int64
	for b.Loop() {
		v = (v*7 + 12345) % 100_000
		h.Record(v)
	}
}
