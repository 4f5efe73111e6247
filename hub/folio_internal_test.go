package hub

import (
	"fmt"
	"testing"

	"quotehub"
)

// A folio values the latest quote noted of each symbol: an older or
// repeated seq is not noted, a symbol it does not value is ignored, and a
// symbol never quoted is not priced.
func TestFolioNotes(t *testing.T) {
	var got map[string]quotehub.Quote
	f := newFolio(func(q func(string) (quotehub.Quote, bool)) []byte {
		got = map[string]quotehub.Quote{}
		for _, s := range []string{"A", "B", "C", "X"} {
			if v, ok := q(s); ok {
				got[s] = v
			}
		}
		return nil
	}, []string{"A", "B", "C", "A"})
	note := func(sym string, seq uint64, want bool) {
		t.Helper()
		if f.note(&quotehub.Quote{Symbol: sym, Seq: seq, Price: float64(seq)}) != want {
			t.Fatalf("note %s %d: want %v", sym, seq, want)
		}
	}
	note("A", 2, true)
	note("A", 2, false)
	note("A", 1, false)
	note("B", 5, true)
	note("X", 9, false)
	f.frame()
	if len(got) != 2 || got["A"].Seq != 2 || got["B"].Seq != 5 {
		t.Fatalf("valued %v", got)
	}
	note("A", 3, true)
	f.frame()
	if got["A"].Price != 3 {
		t.Fatalf("valued %v after a newer quote", got["A"])
	}
}

// BenchmarkFolio: 20 quotes noted into a 20-symbol portfolio's folio and
// one valuation's copy, as Publish and the writer do per refresh.
func BenchmarkFolio(b *testing.B) {
	syms := make([]string, 20)
	qs := make([]quotehub.Quote, 20)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYN-%06d", i)
		qs[i] = quotehub.Quote{Symbol: syms[i], Price: 100}
	}
	var n int
	f := newFolio(func(q func(string) (quotehub.Quote, bool)) []byte {
		for _, s := range syms {
			if _, ok := q(s); ok {
				n++
			}
		}
		return nil
	}, syms)
	seq := uint64(0)
	for b.Loop() {
		seq++
		for i := range qs {
			qs[i].Seq = seq
			f.note(&qs[i])
		}
		f.frame()
	}
	if n == 0 {
		b.Fatal("nothing valued")
	}
}
