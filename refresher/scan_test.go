package refresher

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/memory"
)

// countingProvider answers every symbol and counts requests and symbols.
type countingProvider struct {
	mu    sync.Mutex
	calls int
	syms  map[string]int
}

func (p *countingProvider) Name() string  { return "counting" }
func (p *countingProvider) MaxBatch() int { return 100 }
func (p *countingProvider) Fetch(_ context.Context, syms []string) ([]quotehub.Quote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	var qs []quotehub.Quote
	for _, s := range syms {
		p.syms[s]++
		qs = append(qs, quotehub.Quote{Symbol: s, Price: 1, Currency: "KRW", TradeTime: 1763726400123, Source: "counting", Market: quotehub.MarketOpen})
	}
	return qs, nil
}

func (p *countingProvider) fetched() (calls int, per map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	per = map[string]int{}
	for s, n := range p.syms {
		per[s] = n
	}
	return p.calls, per
}

// TestScansOnlyWhenSomethingIsDue: the loop's tick does not walk the
// active set until a symbol can be due (or something new arrives), and
// nothing is refreshed later than before.
func TestScansOnlyWhenSomethingIsDue(t *testing.T) {
	const interval = 200 * time.Millisecond
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	var scanned atomic.Int64 // Owns is asked once per symbol a scan walks
	notOwned := "SYN-000050"
	p := &countingProvider{syms: map[string]int{}}
	var catalog []quotehub.SymbolInfo
	var syms []string
	for i := 1; i <= 50; i++ {
		s := fmt.Sprintf("SYN-%06d", i)
		syms = append(syms, s)
		catalog = append(catalog, quotehub.SymbolInfo{Symbol: s, Exchange: quotehub.ExchangeUpbit, Currency: "KRW"})
	}
	catalog = append(catalog, quotehub.SymbolInfo{Symbol: "SYN-000051", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"})
	r, err := New(Options{
		Cache: memory.NewCache(), Bus: memory.NewBus(), Active: memory.NewActiveSet(), Catalog: memory.NewCatalog(catalog),
		Sources: []Source{{Provider: p, Interval: interval}}, Metrics: NewMetrics(nil), Now: now,
		Owns: func(s string) bool { scanned.Add(1); return s != notOwned },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(d time.Duration) (walked int64) {
		advance(d)
		before := scanned.Load()
		r.refreshDue(ctx)
		r.wg.Wait() // the fetches it started
		return scanned.Load() - before
	}

	r.addActive(ctx, syms)
	if n := step(0); n != 50 {
		t.Fatalf("first scan walked %d symbols, want 50", n)
	}
	if calls, per := p.fetched(); calls != 1 || len(per) != 49 {
		t.Fatalf("first scan: %d requests for %d symbols, want 1 for 49 (one is not owned)", calls, len(per))
	}
	// Until half an interval before the next due time, ticks walk nothing.
	for i := range 9 {
		if n := step(10 * time.Millisecond); n != 0 {
			t.Fatalf("tick %d, nothing due: walked %d symbols", i, n)
		}
	}
	// At half an interval the symbols are nearly due (and the unowned one
	// is looked at again): one walk, nothing fetched, as no batch goes.
	if n := step(10 * time.Millisecond); n != 50 {
		t.Fatalf("at half an interval walked %d symbols, want 50", n)
	}
	if calls, _ := p.fetched(); calls != 1 {
		t.Fatalf("%d requests before anything was due", calls)
	}
	for i := range 9 {
		if n := step(10 * time.Millisecond); n != 0 {
			t.Fatalf("tick %d after the walk: walked %d symbols", i, n)
		}
	}
	// Due: one request for all of them, one interval after the first.
	if n := step(10 * time.Millisecond); n != 50 {
		t.Fatalf("when due walked %d symbols, want 50", n)
	}
	if calls, per := p.fetched(); calls != 2 || per["SYN-000001"] != 2 {
		t.Fatalf("when due: %d requests, SYN-000001 fetched %d times; want 2 and 2", calls, per["SYN-000001"])
	}
	// A new symbol is looked at, and fetched, on the next tick.
	r.addActive(ctx, []string{"SYN-000051"})
	if n := step(0); n != 51 {
		t.Fatalf("after a new symbol walked %d symbols, want 51", n)
	}
	if _, per := p.fetched(); per["SYN-000051"] != 1 {
		t.Fatalf("new symbol fetched %d times, want 1", per["SYN-000051"])
	}
}
