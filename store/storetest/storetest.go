// Package storetest holds conformance suites for the store interfaces of
// quotehub (Cache, ActiveSet, Catalog, Bus). Every implementation runs the
// same suites from its own tests:
//
//	func TestCache(t *testing.T) {
//		storetest.TestCache(t, func(t *testing.T) quotehub.Cache { return memory.NewCache() })
//	}
//
// The suites only rely on what the interfaces promise. They use symbols that
// are unique to each run and subtest, so a factory may hand out stores that
// share a backend (a Redis database) with other tests, as
// long as the backend itself is otherwise quiet. Subtests do not call
// t.Parallel.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
)

// DeliveryTimeout is how long the Bus suite waits for an expected delivery.
const DeliveryTimeout = 2 * time.Second

var (
	runID   = fmt.Sprintf("%08X", rand.Uint32())
	counter atomic.Uint64
)

// symbol returns a well-formed symbol that no other subtest or run uses.
func symbol(t *testing.T) string {
	t.Helper()
	s := fmt.Sprintf("ST%s-%d", runID, counter.Add(1))
	if n, err := quotehub.NormalizeSymbol(s); err != nil || n != s {
		t.Fatalf("storetest made a malformed symbol %q: %v", s, err)
	}
	return s
}

// symbols returns n unique symbols.
func symbols(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = symbol(t)
	}
	return out
}

// baseMs is a plausible Unix-millisecond time for quotes.
const baseMs = 1763726400000

// quote returns a valid quote of sym with every field set; its values derive
// from seq, so two quotes of different seq differ in every value field.
func quote(sym string, seq uint64) quotehub.Quote {
	return quotehub.Quote{
		Symbol:     sym,
		Price:      1000 + float64(seq)*1.25,
		PrevClose:  1000,
		Change:     float64(seq) * 1.25,
		ChangeRate: float64(seq) * 0.00125,
		Volume:     10.5 + float64(seq),
		Has:        quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume,
		Currency:   "KRW",
		TradeTime:  baseMs + int64(seq)*10,
		FetchedAt:  baseMs + int64(seq)*10 + 3,
		Seq:        seq,
		Source:     "storetest",
		Market:     quotehub.MarketOpen,
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// ---------------------------------------------------------------- Cache

// TestCache runs the conformance suite of quotehub.Cache. newCache is called
// once per subtest.
func TestCache(t *testing.T, newCache func(t *testing.T) quotehub.Cache) {
	t.Helper()

	mustPut := func(t *testing.T, c quotehub.Cache, q quotehub.Quote, wantWritten bool) {
		t.Helper()
		written, err := c.Put(ctx(t), q)
		if err != nil {
			t.Fatalf("Put(%s seq %d): %v", q.Symbol, q.Seq, err)
		}
		if written != wantWritten {
			t.Fatalf("Put(%s seq %d fetched_at %d) written = %v, want %v", q.Symbol, q.Seq, q.FetchedAt, written, wantWritten)
		}
	}
	mustGet := func(t *testing.T, c quotehub.Cache, sym string, want quotehub.Quote) {
		t.Helper()
		got, ok, err := c.Get(ctx(t), sym)
		if err != nil {
			t.Fatalf("Get(%s): %v", sym, err)
		}
		if !ok {
			t.Fatalf("Get(%s) missed, want %+v", sym, want)
		}
		if got != want {
			t.Fatalf("Get(%s) =\n%+v\nwant\n%+v", sym, got, want)
		}
	}

	t.Run("empty cache misses", func(t *testing.T) {
		c := newCache(t)
		q, ok, err := c.Get(ctx(t), symbol(t))
		if err != nil || ok {
			t.Fatalf("Get on empty cache = %+v, %v, %v; want a miss", q, ok, err)
		}
	})

	t.Run("put then get returns the quote", func(t *testing.T) {
		c := newCache(t)
		q := quote(symbol(t), 7)
		mustPut(t, c, q, true)
		mustGet(t, c, q.Symbol, q)
	})

	t.Run("absent optional fields stay absent", func(t *testing.T) {
		c := newCache(t)
		q := quote(symbol(t), 3)
		q.Has, q.PrevClose, q.Change, q.ChangeRate = quotehub.HasVolume, 0, 0, 0
		q.Volume = 0
		q.Market = quotehub.MarketClosed
		mustPut(t, c, q, true)
		mustGet(t, c, q.Symbol, q)
	})

	t.Run("other symbols still miss after a put", func(t *testing.T) {
		c := newCache(t)
		mustPut(t, c, quote(symbol(t), 1), true)
		other := symbol(t)
		if q, ok, err := c.Get(ctx(t), other); err != nil || ok {
			t.Fatalf("Get(%s) = %+v, %v, %v; want a miss", other, q, ok, err)
		}
	})

	t.Run("higher seq replaces the value", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		mustPut(t, c, quote(sym, 1), true)
		q2 := quote(sym, 2)
		mustPut(t, c, q2, true)
		mustGet(t, c, sym, q2)
		q9 := quote(sym, 9)
		mustPut(t, c, q9, true)
		mustGet(t, c, sym, q9)
	})

	t.Run("higher seq replaces even with an older fetched_at", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		mustPut(t, c, quote(sym, 1), true)
		q2 := quote(sym, 2)
		q2.FetchedAt = baseMs
		mustPut(t, c, q2, true)
		mustGet(t, c, sym, q2)
	})

	t.Run("equal seq with later fetched_at only moves fetched_at", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		q := quote(sym, 5)
		mustPut(t, c, q, true)

		confirm := quote(sym, 6) // different values in every field but Seq
		confirm.Seq = 5
		confirm.FetchedAt = q.FetchedAt + 1000
		confirm.Has = quotehub.HasVolume
		confirm.Currency, confirm.Source, confirm.Market = "USD", "other", quotehub.MarketClosed
		mustPut(t, c, confirm, true)

		want := q
		want.FetchedAt = confirm.FetchedAt
		mustGet(t, c, sym, want)
	})

	t.Run("equal seq with equal fetched_at is refused", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		q := quote(sym, 5)
		mustPut(t, c, q, true)
		again := quote(sym, 6)
		again.Seq, again.FetchedAt = q.Seq, q.FetchedAt
		mustPut(t, c, again, false)
		mustGet(t, c, sym, q)
	})

	t.Run("equal seq with earlier fetched_at is refused", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		q := quote(sym, 5)
		mustPut(t, c, q, true)
		older := q
		older.FetchedAt = q.FetchedAt - 1
		mustPut(t, c, older, false)
		mustGet(t, c, sym, q)
	})

	t.Run("lower seq is refused and the value is unchanged", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		q := quote(sym, 5)
		mustPut(t, c, q, true)
		lower := quote(sym, 4)
		lower.FetchedAt = q.FetchedAt + 60000
		mustPut(t, c, lower, false)
		mustPut(t, c, quote(sym, 1), false)
		mustGet(t, c, sym, q)
	})

	t.Run("PutMany fences each quote on its own", func(t *testing.T) {
		c := newCache(t)
		syms := symbols(t, 3)
		mustPut(t, c, quote(syms[1], 5), true)
		confirm := quote(syms[1], 5)
		confirm.FetchedAt += 1000
		batch := []quotehub.Quote{quote(syms[0], 2), quote(syms[1], 4), quote(syms[2], 7), confirm}
		written, err := c.PutMany(ctx(t), batch)
		if err != nil {
			t.Fatalf("PutMany: %v", err)
		}
		if want := []bool{true, false, true, true}; !slices.Equal(written, want) {
			t.Fatalf("PutMany written = %v, want %v", written, want)
		}
		mustGet(t, c, syms[0], quote(syms[0], 2))
		mustGet(t, c, syms[1], confirm)
		mustGet(t, c, syms[2], quote(syms[2], 7))
		if w, err := c.PutMany(ctx(t), nil); err != nil || len(w) != 0 {
			t.Fatalf("PutMany(nil) = %v, %v", w, err)
		}
	})

	t.Run("GetMany returns quotes in order with zero quotes for misses", func(t *testing.T) {
		c := newCache(t)
		syms := symbols(t, 5)
		qa, qc, qe := quote(syms[0], 1), quote(syms[2], 2), quote(syms[4], 3)
		for _, q := range []quotehub.Quote{qe, qa, qc} {
			mustPut(t, c, q, true)
		}
		req := []string{syms[4], syms[1], syms[0], syms[3], syms[2]}
		got, err := c.GetMany(ctx(t), req)
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		want := []quotehub.Quote{qe, {}, qa, {}, qc}
		if !slices.Equal(got, want) {
			t.Fatalf("GetMany(%q) =\n%+v\nwant\n%+v", req, got, want)
		}
	})

	t.Run("GetMany repeats a symbol named twice", func(t *testing.T) {
		c := newCache(t)
		sym := symbol(t)
		q := quote(sym, 4)
		mustPut(t, c, q, true)
		got, err := c.GetMany(ctx(t), []string{sym, sym})
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if want := []quotehub.Quote{q, q}; !slices.Equal(got, want) {
			t.Fatalf("GetMany = %+v, want %+v", got, want)
		}
	})

	t.Run("GetMany of all misses gives zero quotes", func(t *testing.T) {
		c := newCache(t)
		got, err := c.GetMany(ctx(t), symbols(t, 3))
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if want := make([]quotehub.Quote, 3); !slices.Equal(got, want) {
			t.Fatalf("GetMany = %+v, want 3 zero quotes", got)
		}
	})

	t.Run("GetMany of no symbols gives none", func(t *testing.T) {
		c := newCache(t)
		got, err := c.GetMany(ctx(t), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("GetMany(nil) = %+v, %v; want no quotes", got, err)
		}
	})

	t.Run("concurrent puts end at the highest seq and never go backwards", func(t *testing.T) {
		c := newCache(t)
		const rounds, writers, n = 10, 8, 200
		for range rounds {
			if !concurrentPuts(t, c, symbol(t), writers, n) {
				return
			}
		}
	})
}

// concurrentPuts has writers goroutines put seqs 1..n of sym, interleaved,
// while a reader checks that the stored seq never goes backwards and that
// every value read is whole. It reports whether the round passed.
func concurrentPuts(t *testing.T, c quotehub.Cache, sym string, writers, n uint64) bool {
	t.Helper()
	gate := make(chan struct{})
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		var last uint64
		<-gate
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			q, ok, err := c.Get(context.Background(), sym)
			switch {
			case err != nil:
				readerDone <- fmt.Errorf("Get: %w", err)
				return
			case !ok && last > 0:
				readerDone <- fmt.Errorf("Get missed after seq %d was seen", last)
				return
			case !ok:
				continue
			case q.Seq < last:
				readerDone <- fmt.Errorf("seq went backwards: %d after %d", q.Seq, last)
				return
			case q != quote(sym, q.Seq):
				readerDone <- fmt.Errorf("torn value: got %+v, want %+v", q, quote(sym, q.Seq))
				return
			}
			last = q.Seq
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var topWritten atomic.Bool
	for w := range writers {
		wg.Go(func() {
			<-gate
			for seq := w + 1; seq <= n; seq += writers {
				written, err := c.Put(context.Background(), quote(sym, seq))
				if err != nil {
					errs <- fmt.Errorf("Put seq %d: %w", seq, err)
					return
				}
				if seq == n {
					topWritten.Store(written)
				}
			}
		})
	}
	close(gate)
	wg.Wait()
	close(stop)
	ok := true
	if err := <-readerDone; err != nil {
		t.Errorf("%s: %v", sym, err)
		ok = false
	}
	close(errs)
	for err := range errs {
		t.Errorf("%s: %v", sym, err)
		ok = false
	}
	if !topWritten.Load() {
		t.Errorf("%s: Put of the highest seq %d reported not written", sym, n)
		ok = false
	}
	got, found, err := c.Get(context.Background(), sym)
	if err != nil || !found || got != quote(sym, n) {
		t.Errorf("%s: after the puts Get = %+v, %v, %v; want seq %d", sym, got, found, err, n)
		ok = false
	}
	return ok
}

// ---------------------------------------------------------------- ActiveSet

// TestActiveSet runs the conformance suite of quotehub.ActiveSet. newSet is
// called once per subtest. Times are whole seconds near the wall clock, so
// stores that keep milliseconds or expire old entries pass.
func TestActiveSet(t *testing.T, newSet func(t *testing.T) quotehub.ActiveSet) {
	t.Helper()

	touch := func(t *testing.T, a quotehub.ActiveSet, at time.Time, syms ...string) {
		t.Helper()
		if err := a.Touch(ctx(t), at, syms...); err != nil {
			t.Fatalf("Touch(%v, %q): %v", at, syms, err)
		}
	}
	active := func(t *testing.T, a quotehub.ActiveSet, since time.Time) map[string]int {
		t.Helper()
		got, err := a.Active(ctx(t), since)
		if err != nil {
			t.Fatalf("Active(%v): %v", since, err)
		}
		m := make(map[string]int, len(got))
		for _, s := range got {
			m[s]++
		}
		return m
	}
	assertActive := func(t *testing.T, a quotehub.ActiveSet, since time.Time, in, out []string) {
		t.Helper()
		m := active(t, a, since)
		for _, s := range in {
			if m[s] != 1 {
				t.Errorf("Active(%v) lists %s %d times, want once", since, s, m[s])
			}
		}
		for _, s := range out {
			if m[s] != 0 {
				t.Errorf("Active(%v) lists %s, want it left out", since, s)
			}
		}
	}
	now := func() time.Time { return time.Now().Truncate(time.Second) }

	t.Run("recent lists the newest first, up to the limit", func(t *testing.T) {
		a := newSet(t)
		base := now()
		old, mid, fresh := symbol(t), symbol(t), symbol(t)
		touch(t, a, base.Add(-2*time.Minute), old)
		touch(t, a, base.Add(-time.Minute), mid)
		touch(t, a, base, fresh)
		touch(t, a, base.Add(-3*time.Minute), fresh) // never backwards
		got, err := a.Recent(ctx(t), 2)
		if err != nil {
			t.Fatalf("Recent: %v", err)
		}
		want := []quotehub.Touched{{Symbol: fresh, At: base}, {Symbol: mid, At: base.Add(-time.Minute)}}
		if len(got) != 2 || got[0].Symbol != want[0].Symbol || !got[0].At.Equal(want[0].At) ||
			got[1].Symbol != want[1].Symbol || !got[1].At.Equal(want[1].At) {
			t.Fatalf("Recent(2) = %v, want %v", got, want)
		}
		if got, err := a.Recent(ctx(t), 0); err != nil || len(got) != 0 {
			t.Fatalf("Recent(0) = %v, %v; want nothing", got, err)
		}
	})

	t.Run("touched symbol is active", func(t *testing.T) {
		a := newSet(t)
		base, sym := now(), symbol(t)
		touch(t, a, base, sym)
		assertActive(t, a, base, []string{sym}, nil)
		assertActive(t, a, base.Add(-time.Minute), []string{sym}, nil)
	})

	t.Run("untouched symbol is not active", func(t *testing.T) {
		a := newSet(t)
		base := now()
		touched, untouched := symbol(t), symbol(t)
		touch(t, a, base, touched)
		assertActive(t, a, base.Add(-time.Hour), []string{touched}, []string{untouched})
	})

	t.Run("touch older than since is excluded", func(t *testing.T) {
		a := newSet(t)
		base := now()
		old, recent := symbol(t), symbol(t)
		touch(t, a, base.Add(-2*time.Minute), old)
		touch(t, a, base, recent)
		assertActive(t, a, base.Add(-time.Minute), []string{recent}, []string{old})
		assertActive(t, a, base.Add(time.Second), nil, []string{old, recent})
	})

	t.Run("touch exactly at since is included", func(t *testing.T) {
		a := newSet(t)
		at, sym := now().Add(-time.Minute), symbol(t)
		touch(t, a, at, sym)
		assertActive(t, a, at, []string{sym}, nil)
	})

	t.Run("later touch moves the time forward", func(t *testing.T) {
		a := newSet(t)
		base, sym := now(), symbol(t)
		touch(t, a, base.Add(-3*time.Minute), sym)
		touch(t, a, base, sym)
		assertActive(t, a, base, []string{sym}, nil)
	})

	t.Run("touch at an earlier time does not move the time back", func(t *testing.T) {
		a := newSet(t)
		base, sym := now(), symbol(t)
		touch(t, a, base, sym)
		touch(t, a, base.Add(-3*time.Minute), sym)
		assertActive(t, a, base, []string{sym}, nil)
	})

	t.Run("symbol touched twice is listed once", func(t *testing.T) {
		a := newSet(t)
		base, sym := now(), symbol(t)
		touch(t, a, base.Add(-time.Second), sym)
		touch(t, a, base, sym, sym)
		assertActive(t, a, base.Add(-time.Minute), []string{sym}, nil)
	})

	t.Run("prune removes older symbols and keeps newer ones", func(t *testing.T) {
		a := newSet(t)
		base := now()
		old, atCut, recent := symbol(t), symbol(t), symbol(t)
		touch(t, a, base.Add(-2*time.Minute), old)
		touch(t, a, base.Add(-time.Minute), atCut)
		touch(t, a, base, recent)
		if err := a.Prune(ctx(t), base.Add(-time.Minute)); err != nil {
			t.Fatalf("Prune: %v", err)
		}
		assertActive(t, a, base.Add(-time.Hour), []string{atCut, recent}, []string{old})
	})

	t.Run("pruned symbol becomes active again when touched", func(t *testing.T) {
		a := newSet(t)
		base, sym := now(), symbol(t)
		touch(t, a, base.Add(-2*time.Minute), sym)
		if err := a.Prune(ctx(t), base.Add(-time.Minute)); err != nil {
			t.Fatalf("Prune: %v", err)
		}
		assertActive(t, a, base.Add(-time.Hour), nil, []string{sym})
		touch(t, a, base, sym)
		assertActive(t, a, base, []string{sym}, nil)
	})

	t.Run("one touch marks many symbols", func(t *testing.T) {
		a := newSet(t)
		base, syms := now(), symbols(t, 250)
		touch(t, a, base, syms...)
		assertActive(t, a, base, syms, nil)
	})

	t.Run("touch of no symbols succeeds", func(t *testing.T) {
		a := newSet(t)
		touch(t, a, now())
	})
}

// ---------------------------------------------------------------- Catalog

// CatalogEntries is the catalogue TestCatalog hands to its factory.
var CatalogEntries = []quotehub.SymbolInfo{
	{Symbol: "KRW-BTC", Name: "비트코인 Bitcoin", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "005930.KS", Name: "삼성전자", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
	{Symbol: "AAPL", Name: "Apple Inc.", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
	{Symbol: "USDT-BTC", Name: "Bitcoin (USDT)", Exchange: quotehub.ExchangeUpbit, Currency: "USDT"},
	{Symbol: "006400.KS", Name: "삼성SDI", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
	{Symbol: "BTCX", Name: "Bitcoin Trust", Exchange: quotehub.ExchangeNYSE, Currency: "USD"},
	{Symbol: "000660.KS", Name: "SK하이닉스", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
	{Symbol: "ABTC", Name: "American Bitcoin Corp.", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
	{Symbol: "KRW-ETH", Name: "이더리움 Ethereum", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "BITO", Name: "ProShares Bitcoin Strategy ETF", Exchange: quotehub.ExchangeNYSE, Currency: "USD"},
	{Symbol: "BRK_B", Name: "Berkshire Hathaway Class B", Exchange: quotehub.ExchangeNYSE, Currency: "USD"},
	{Symbol: "MSFT", Name: "Microsoft", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
}

// TestCatalog runs the conformance suite of quotehub.Catalog. newCatalog is
// called once per subtest with a copy of CatalogEntries and must return a
// catalogue of exactly those entries.
func TestCatalog(t *testing.T, newCatalog func(t *testing.T, entries []quotehub.SymbolInfo) quotehub.Catalog) {
	t.Helper()

	byName := make(map[string]quotehub.SymbolInfo, len(CatalogEntries))
	for _, e := range CatalogEntries {
		byName[e.Symbol] = e
	}
	entries := func(syms ...string) []quotehub.SymbolInfo {
		out := make([]quotehub.SymbolInfo, 0, len(syms))
		for _, s := range syms {
			out = append(out, byName[s])
		}
		return out
	}
	allSorted := []string{"000660.KS", "005930.KS", "006400.KS", "AAPL", "ABTC", "BITO", "BRK_B", "BTCX", "KRW-BTC", "KRW-ETH", "MSFT", "USDT-BTC"}
	newCat := func(t *testing.T) quotehub.Catalog {
		t.Helper()
		return newCatalog(t, slices.Clone(CatalogEntries))
	}
	search := func(t *testing.T, c quotehub.Catalog, q string, limit int, want []string) {
		t.Helper()
		got, err := c.Search(ctx(t), q, limit)
		if err != nil {
			t.Fatalf("Search(%q, %d): %v", q, limit, err)
		}
		if got == nil {
			t.Errorf("Search(%q, %d) = nil, want a non-nil slice", q, limit)
		}
		if w := entries(want...); !slices.Equal(got, w) {
			t.Errorf("Search(%q, %d) =\n%v\nwant\n%v", q, limit, got, w)
		}
	}

	t.Run("lookup of a known symbol returns its entry", func(t *testing.T) {
		c := newCat(t)
		for _, e := range CatalogEntries {
			got, ok, err := c.Lookup(ctx(t), e.Symbol)
			if err != nil || !ok || got != e {
				t.Errorf("Lookup(%s) = %+v, %v, %v; want %+v", e.Symbol, got, ok, err, e)
			}
		}
	})

	t.Run("lookup of an unknown symbol misses", func(t *testing.T) {
		c := newCat(t)
		for _, sym := range []string{"NOPE", "KRW-BT", "KRW-BTCX", "BTC"} {
			if got, ok, err := c.Lookup(ctx(t), sym); err != nil || ok {
				t.Errorf("Lookup(%s) = %+v, %v, %v; want a miss", sym, got, ok, err)
			}
		}
	})

	tests := []struct {
		name  string
		q     string
		limit int
		want  []string
	}{
		{"empty query lists everything in symbol order", "", 100, allSorted},
		{"empty query respects the limit", "", 3, allSorted[:3]},
		{"symbol prefix matches come before other matches", "BTC", 20, []string{"BTCX", "ABTC", "KRW-BTC", "USDT-BTC"}},
		{"lower-case query matches upper-case symbols", "btc", 20, []string{"BTCX", "ABTC", "KRW-BTC", "USDT-BTC"}},
		{"name prefix is not a symbol prefix", "bit", 20, []string{"BITO", "ABTC", "BTCX", "KRW-BTC", "USDT-BTC"}},
		{"limit cuts the other matches", "btc", 2, []string{"BTCX", "ABTC"}},
		{"limit cuts the prefix matches", "bit", 1, []string{"BITO"}},
		{"several prefix matches are in symbol order", "krw", 20, []string{"KRW-BTC", "KRW-ETH"}},
		{"middle of a symbol matches", "-BTC", 20, []string{"KRW-BTC", "USDT-BTC"}},
		{"Korean name substring matches", "삼성", 20, []string{"005930.KS", "006400.KS"}},
		{"end of a Korean name matches", "전자", 20, []string{"005930.KS"}},
		{"mixed-script name matches case-insensitively", "sk하이", 20, []string{"000660.KS"}},
		{"name match ignores case", "APPLE", 20, []string{"AAPL"}},
		{"name with spaces matches", "bitcoin trust", 20, []string{"BTCX"}},
		{"digits match symbols", "0066", 20, []string{"000660.KS"}},
		{"dot matches literally", ".KS", 20, []string{"000660.KS", "005930.KS", "006400.KS"}},
		{"underscore matches literally", "_", 20, []string{"BRK_B"}},
		{"percent sign matches literally", "%", 20, []string{}},
		{"whole symbol matches", "MSFT", 20, []string{"MSFT"}},
		{"no match gives an empty list", "zzzz", 20, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			search(t, newCat(t), tt.q, tt.limit, tt.want)
		})
	}

	t.Run("empty catalogue lists nothing", func(t *testing.T) {
		c := newCatalog(t, nil)
		search(t, c, "", 20, []string{})
		if got, ok, err := c.Lookup(ctx(t), "AAPL"); err != nil || ok {
			t.Errorf("Lookup(AAPL) = %+v, %v, %v; want a miss", got, ok, err)
		}
	})
}

// ---------------------------------------------------------------- Bus

// TestBus runs the conformance suite of quotehub.Bus. newBus is called once
// per subtest and must wire the bus so that every quote it delivers to this
// node reaches deliver (which is safe for concurrent use). Delivery may be
// asynchronous; the suite waits up to DeliveryTimeout for it.
func TestBus(t *testing.T, newBus func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus) {
	t.Helper()
	newBus = settling(newBus)

	t.Run("published quotes reach the handler intact", func(t *testing.T) {
		rec := newRecorder()
		b := newBus(t, rec.deliver)
		syms := symbols(t, 3)
		for _, s := range syms {
			b.Watch(s)
		}
		q0 := quote(syms[0], 11)
		q1 := quote(syms[1], 12)
		q1.Has, q1.PrevClose, q1.Change, q1.ChangeRate, q1.Volume = 0, 0, 0, 0, 0
		q1.Market = quotehub.MarketClosed
		q2 := quote(syms[2], 13)
		q2.Has, q2.PrevClose, q2.ChangeRate = quotehub.HasChange|quotehub.HasVolume, 0, 0
		q2.Symbol, q2.Source = syms[2], `up"stream\`

		if err := b.Publish(ctx(t), []quotehub.Quote{q0, q1, q2}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for _, want := range []quotehub.Quote{q0, q1, q2} {
			rec.waitFor(t, want)
		}
	})

	t.Run("watched symbol is delivered", func(t *testing.T) {
		rec := newRecorder()
		b := newBus(t, rec.deliver)
		sym := symbol(t)
		b.Watch(sym)
		q := quote(sym, 1)
		if err := b.Publish(ctx(t), []quotehub.Quote{q}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		rec.waitFor(t, q)
	})

	t.Run("successive publishes are all delivered", func(t *testing.T) {
		rec := newRecorder()
		b := newBus(t, rec.deliver)
		syms := symbols(t, 5)
		var want []quotehub.Quote
		for i, s := range syms {
			b.Watch(s)
			q := quote(s, uint64(i+1))
			want = append(want, q)
			if err := b.Publish(ctx(t), []quotehub.Quote{q}); err != nil {
				t.Fatalf("Publish(%s): %v", s, err)
			}
		}
		for _, q := range want {
			rec.waitFor(t, q)
		}
	})

	t.Run("latest of several updates of a symbol is delivered", func(t *testing.T) {
		rec := newRecorder()
		b := newBus(t, rec.deliver)
		sym := symbol(t)
		b.Watch(sym)
		for seq := uint64(1); seq <= 5; seq++ {
			if err := b.Publish(ctx(t), []quotehub.Quote{quote(sym, seq)}); err != nil {
				t.Fatalf("Publish(seq %d): %v", seq, err)
			}
		}
		rec.waitFor(t, quote(sym, 5))
	})

	t.Run("unwatched symbol is not delivered", func(t *testing.T) {
		rec := newRecorder()
		b := newBus(t, rec.deliver)
		watched, unwatched := symbol(t), symbols(t, 8)
		b.Watch(watched)
		// The unwatched quotes go first, one publish each, then the watched
		// one: once that is delivered, everything published before it has
		// been through the bus, so what was not delivered by then is not
		// waiting in it (a server that fans out in order, like Redis, has
		// already written them to this node's connections).
		var sent []quotehub.Quote
		for i, s := range unwatched {
			q := quote(s, uint64(i+1))
			sent = append(sent, q)
			if err := b.Publish(ctx(t), []quotehub.Quote{q}); err != nil {
				t.Fatalf("Publish(%s): %v", s, err)
			}
		}
		marker := quote(watched, 1)
		if err := b.Publish(ctx(t), []quotehub.Quote{marker}); err != nil {
			t.Fatalf("Publish(%s): %v", watched, err)
		}
		rec.waitFor(t, marker)
		for _, q := range sent {
			got, _ := rec.has(q)
			switch {
			case got && !deliversAll(b):
				t.Errorf("%s was delivered though never watched", q.Symbol)
			case !got && deliversAll(b):
				t.Errorf("%s was not delivered by a bus that delivers everything", q.Symbol)
			}
		}
	})

	t.Run("publishing nothing succeeds", func(t *testing.T) {
		b := newBus(t, newRecorder().deliver)
		if err := b.Publish(ctx(t), nil); err != nil {
			t.Fatalf("Publish(nil): %v", err)
		}
	})

	t.Run("watch and unwatch return at once", func(t *testing.T) {
		b := newBus(t, newRecorder().deliver).(settledBus).Bus // the bus itself, not settling
		syms := symbols(t, 200)
		start := time.Now()
		for _, s := range syms {
			b.Watch(s)
		}
		for _, s := range syms {
			b.Unwatch(s)
		}
		b.Unwatch(symbol(t)) // never watched
		if d := time.Since(start); d > time.Second {
			t.Fatalf("400 Watch/Unwatch calls took %v, want them not to block", d)
		}
	})
}

// EverythingDeliverer is implemented by buses that deliver every quote
// published anywhere to this node, watched or not (a single node's
// in-process bus, which the hub filters). The interface allows it; for
// them the suite checks that unwatched symbols are delivered. Every other
// bus must deliver only watched symbols.
type EverythingDeliverer interface {
	DeliversEverything() bool
}

// DeliveringEverything wraps a bus that delivers every published quote (see
// EverythingDeliverer), for its conformance run.
func DeliveringEverything(b quotehub.Bus) quotehub.Bus { return everything{b} }

type everything struct{ quotehub.Bus }

func (everything) DeliversEverything() bool { return true }

// Settle passes on to the wrapped bus, when it has Settle.
func (e everything) Settle(ctx context.Context, symbols ...string) error {
	if s, ok := e.Bus.(Settler); ok {
		return s.Settle(ctx, symbols...)
	}
	return nil
}

func deliversAll(b quotehub.Bus) bool {
	if s, ok := b.(settledBus); ok {
		b = s.Bus
	}
	e, ok := b.(EverythingDeliverer)
	return ok && e.DeliversEverything()
}

// Settler is implemented by buses whose Watch takes effect asynchronously
// (a subscription on a server): Settle returns once the watches of symbols
// are in place. The suite settles after watching, before publishing.
type Settler interface {
	Settle(ctx context.Context, symbols ...string) error
}

// settledBus makes Watch wait for Settle, for buses that have it.
type settledBus struct {
	quotehub.Bus
	t *testing.T
}

func (b settledBus) Watch(symbol string) {
	b.Bus.Watch(symbol)
	if s, ok := b.Bus.(Settler); ok {
		if err := s.Settle(ctx(b.t), symbol); err != nil {
			b.t.Fatalf("Settle(%s): %v", symbol, err)
		}
	}
}

func settling(newBus func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus) func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus {
	return func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus {
		return settledBus{Bus: newBus(t, deliver), t: t}
	}
}

// recorder collects delivered quotes, copying them out of the bus's slices.
type recorder struct {
	mu      sync.Mutex
	got     map[string][]quotehub.Quote
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: make(map[string][]quotehub.Quote), changed: make(chan struct{}, 1)}
}

func (r *recorder) deliver(qs []quotehub.Quote) {
	r.mu.Lock()
	for _, q := range qs {
		r.got[q.Symbol] = append(r.got[q.Symbol], q)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) has(want quotehub.Quote) (bool, []quotehub.Quote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := slices.Clone(r.got[want.Symbol])
	return slices.Contains(got, want), got
}

// waitFor waits up to DeliveryTimeout for want to be delivered.
func (r *recorder) waitFor(t *testing.T, want quotehub.Quote) {
	t.Helper()
	deadline := time.NewTimer(DeliveryTimeout)
	defer deadline.Stop()
	for {
		ok, got := r.has(want)
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("quote not delivered within %v:\nwant %+v\ngot for %s: %+v", DeliveryTimeout, want, want.Symbol, got)
		}
	}
}

// TestUserBus checks a quotehub.UserBus: newBus returns a started bus of
// one node whose events reach deliver.
func TestUserBus(t *testing.T, newBus func(t *testing.T, deliver func(quotehub.UserEvent)) quotehub.UserBus) {
	t.Helper()
	t.Run("an event reaches the node's handler intact, in order", func(t *testing.T) {
		got := make(chan quotehub.UserEvent, 16)
		b := newBus(t, func(ev quotehub.UserEvent) { got <- ev })
		user := symbol(t) // any unique string
		sent := []quotehub.UserEvent{
			{User: user, Kind: quotehub.UserListsChanged, Data: json.RawMessage(`{"list":"watchlist:7"}`)},
			{User: user, Kind: quotehub.UserAlertFired, Data: json.RawMessage(`{"id":3,"note":"\"quoted\" \u00e9"}`)},
			{User: user + `"odd\` + "\u2028", Kind: quotehub.UserRulesChanged},
		}
		for _, ev := range sent {
			if err := b.PublishUser(ctx(t), ev); err != nil {
				t.Fatalf("PublishUser: %v", err)
			}
		}
		for i, want := range sent {
			select {
			case ev := <-got:
				if ev.User != want.User || ev.Kind != want.Kind || !jsonEqual(ev.Data, want.Data) {
					t.Fatalf("event %d: %+v (data %s), want %+v (data %s)", i, ev, ev.Data, want, want.Data)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("event %d never arrived", i)
			}
		}
	})
	t.Run("an event without a user is refused", func(t *testing.T) {
		b := newBus(t, func(quotehub.UserEvent) {})
		if err := b.PublishUser(ctx(t), quotehub.UserEvent{Kind: quotehub.UserListsChanged}); err == nil {
			t.Fatal("PublishUser accepted an event without a user")
		}
	})
}

// jsonEqual reports whether two JSON texts hold the same value (nil and
// empty are equal).
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// MigrationFiles counts the migration files (migrations/*.sql) of the
// calling test's package: a migrated database lists one row per file.
func MigrationFiles(t testing.TB) int {
	t.Helper()
	m, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(m) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(m)
}
