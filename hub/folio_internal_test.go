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

// A Close or unsubscribe can take a symbol's state out of its topic
// before the subscribe it undoes has put it in (both run after the
// client's lock is released): whatever order the two run in, the topic
// ends as the last flip of subscribed says, and nothing panics.
func TestTopicAddAndRemoveInEitherOrder(t *testing.T) {
	h := New(Options{})
	defer h.Shutdown(t.Context())
	c := &Client{hub: h}
	st := &symState{c: c, symbol: "KRW-BTC", idx: -1}
	other := &symState{c: &Client{hub: h}, symbol: "KRW-BTC", idx: -1}
	h.add(other)

	h.remove(st) // the unsubscribe's remove first
	h.add(st)    // then the subscribe's add
	if got := h.Subscribers("KRW-BTC"); got != 1 {
		t.Fatalf("remove then add: %d subscribers, want 1 (the other client's)", got)
	}
	h.add(st) // subscribe, unsubscribe, subscribe: both adds before the remove
	h.add(st)
	h.remove(st)
	if got := h.Subscribers("KRW-BTC"); got != 2 {
		t.Fatalf("add, add, remove: %d subscribers, want 2", got)
	}
	h.remove(st)
	h.remove(other)
	if got := h.Subscribers("KRW-BTC"); got != 0 {
		t.Fatalf("all removed: %d subscribers", got)
	}
	if got := h.Symbols(); len(got) != 0 {
		t.Fatalf("active symbols %v, want none", got)
	}
}
