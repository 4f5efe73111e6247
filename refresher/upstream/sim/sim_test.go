package sim_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"quotehub"
	"quotehub/refresher/upstream/sim"
)

var kst = time.FixedZone("KST", 9*3600)

// Fixed instants; no test depends on the wall clock.
var (
	// Wednesday 2025-06-11 09:00 KST (00:00 UTC): KRX opens, NYSE closed.
	wedKRXOpen = time.Date(2025, 6, 11, 9, 0, 0, 0, kst)
	// Wednesday 2025-06-11 03:00 KST: KRX closed, NYSE open (14:00 EDT on Tuesday).
	wed3amKST = time.Date(2025, 6, 11, 3, 0, 0, 0, kst)
	// Saturday 2025-06-14 12:00 UTC: every stock market closed.
	saturday = time.Date(2025, 6, 14, 12, 0, 0, 0, time.UTC)
)

// fixedNow is the clock of tests that do not care about the time.
func fixedNow() time.Time { return saturday }

// clock is a fake clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fetch calls p.Fetch and fails the test on an error or an invalid quote.
func fetch(t testing.TB, p *sim.Provider, symbols ...string) []quotehub.Quote {
	t.Helper()
	qs, err := p.Fetch(context.Background(), symbols)
	if err != nil {
		t.Fatalf("Fetch(%v): %v", symbols, err)
	}
	if len(qs) != len(symbols) {
		t.Fatalf("Fetch(%v) returned %d quotes, want %d", symbols, len(qs), len(symbols))
	}
	for i := range qs {
		if qs[i].Symbol != symbols[i] {
			t.Fatalf("quote %d is for %q, want %q", i, qs[i].Symbol, symbols[i])
		}
	}
	validate(t, qs)
	return qs
}

// validate checks every quote passes Validate and carries what sim promises.
func validate(t testing.TB, qs []quotehub.Quote) {
	t.Helper()
	const all = quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume
	for i := range qs {
		q := &qs[i]
		if err := q.Validate(); err != nil {
			t.Fatalf("invalid quote %+v: %v", *q, err)
		}
		if q.Has != all || q.Source != "sim" || q.Seq != 0 || q.FetchedAt != 0 || q.Volume < 0 {
			t.Fatalf("quote %+v: want all optional fields, source sim, zero Seq and FetchedAt", *q)
		}
		if d := q.Change - (q.Price - q.PrevClose); math.Abs(d) > 1e-9*math.Max(1, q.Price) {
			t.Fatalf("quote %+v: change is not price - prev_close", *q)
		}
		if d := q.ChangeRate - q.Change/q.PrevClose; math.Abs(d) > 5.1e-7 {
			t.Fatalf("quote %+v: change_rate is not change / prev_close to 6 decimals", *q)
		}
	}
}

func catalogBy(pred func(quotehub.SymbolInfo) bool) []quotehub.SymbolInfo {
	var out []quotehub.SymbolInfo
	for _, s := range sim.Catalog() {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

func TestCatalog(t *testing.T) {
	cat := sim.Catalog()
	byExchange := func(ex ...string) func(quotehub.SymbolInfo) bool {
		return func(s quotehub.SymbolInfo) bool {
			for _, e := range ex {
				if s.Exchange == e {
					return true
				}
			}
			return false
		}
	}
	sizes := []struct {
		name      string
		exchanges []string
		currency  string
		min, max  int
	}{
		{"has at least 36 KOSPI stocks in KRW", []string{quotehub.ExchangeKRX}, "KRW", 36, 1000},
		{"has 50 Upbit KRW markets", []string{quotehub.ExchangeUpbit}, "KRW", 50, 50},
		{"has 50 US stocks in USD", []string{quotehub.ExchangeNYSE, quotehub.ExchangeNASDAQ}, "USD", 50, 50},
		{"has the USD/KRW FX pair, quoted in KRW", []string{sim.ExchangeFX}, "KRW", 1, 1},
	}
	for _, tc := range sizes {
		t.Run(tc.name, func(t *testing.T) {
			got := catalogBy(byExchange(tc.exchanges...))
			if len(got) < tc.min || len(got) > tc.max {
				t.Fatalf("got %d symbols, want %d..%d", len(got), tc.min, tc.max)
			}
			for _, s := range got {
				if s.Currency != tc.currency {
					t.Errorf("%s: currency %q, want %q", s.Symbol, s.Currency, tc.currency)
				}
			}
		})
	}

	t.Run("has only the three markets and FX", func(t *testing.T) {
		n := len(catalogBy(byExchange(quotehub.ExchangeKRX, quotehub.ExchangeUpbit, quotehub.ExchangeNYSE, quotehub.ExchangeNASDAQ, sim.ExchangeFX)))
		if n != len(cat) {
			t.Fatalf("%d of %d symbols are on a known exchange", n, len(cat))
		}
	})

	t.Run("symbols are normalised, unique and sorted", func(t *testing.T) {
		seen := map[string]bool{}
		for i, s := range cat {
			if norm, err := quotehub.NormalizeSymbol(s.Symbol); err != nil || norm != s.Symbol {
				t.Errorf("NormalizeSymbol(%q) = %q, %v", s.Symbol, norm, err)
			}
			if seen[s.Symbol] {
				t.Errorf("duplicate symbol %q", s.Symbol)
			}
			seen[s.Symbol] = true
			if i > 0 && cat[i-1].Symbol >= s.Symbol {
				t.Errorf("not sorted: %q before %q", cat[i-1].Symbol, s.Symbol)
			}
			if s.Name == "" {
				t.Errorf("%s has no name", s.Symbol)
			}
		}
	})

	t.Run("well-known symbols have the right exchange and currency", func(t *testing.T) {
		want := []quotehub.SymbolInfo{
			{Symbol: "005930.KS", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
			{Symbol: "000660.KS", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
			{Symbol: "KRW-BTC", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
			{Symbol: "KRW-ETH", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
			{Symbol: "AAPL", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
			{Symbol: "JPM", Exchange: quotehub.ExchangeNYSE, Currency: "USD"},
		}
		for _, w := range want {
			found := false
			for _, s := range cat {
				if s.Symbol == w.Symbol {
					found = true
					if s.Exchange != w.Exchange || s.Currency != w.Currency {
						t.Errorf("%s: %s/%s, want %s/%s", s.Symbol, s.Exchange, s.Currency, w.Exchange, w.Currency)
					}
				}
			}
			if !found {
				t.Errorf("%s is missing", w.Symbol)
			}
		}
	})

	t.Run("Korean names are searchable in Korean and English", func(t *testing.T) {
		search := func(q string) []string {
			var out []string
			for _, s := range cat {
				if strings.Contains(strings.ToLower(s.Name), strings.ToLower(q)) {
					out = append(out, s.Symbol)
				}
			}
			return out
		}
		cases := []struct{ query, want string }{
			{"삼성", "005930.KS"}, {"samsung", "005930.KS"},
			{"하이닉스", "000660.KS"}, {"hynix", "000660.KS"},
			{"비트코인", "KRW-BTC"}, {"bitcoin", "KRW-BTC"},
			{"apple", "AAPL"},
		}
		for _, c := range cases {
			if got := search(c.query); !contains(got, c.want) {
				t.Errorf("search %q = %v, want it to include %s", c.query, got, c.want)
			}
		}
		for _, s := range catalogBy(byExchange(quotehub.ExchangeKRX, quotehub.ExchangeUpbit)) {
			if !strings.ContainsFunc(s.Name, isHangul) || !strings.ContainsFunc(s.Name, isASCIILetter) {
				t.Errorf("%s: name %q lacks a Korean or an English part", s.Symbol, s.Name)
			}
		}
	})

	t.Run("returns a copy", func(t *testing.T) {
		c := sim.Catalog()
		c[0].Symbol = "CHANGED"
		if sim.Catalog()[0].Symbol == "CHANGED" {
			t.Fatal("modifying the result changed the catalogue")
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isHangul(r rune) bool      { return unicode.Is(unicode.Hangul, r) }
func isASCIILetter(r rune) bool { return r < unicode.MaxASCII && unicode.IsLetter(r) }

func TestSynthetic(t *testing.T) {
	t.Run("builds 10000 unique well-formed symbols", func(t *testing.T) {
		syn := sim.Synthetic(10000)
		if len(syn) != 10000 {
			t.Fatalf("len = %d, want 10000", len(syn))
		}
		seen := make(map[string]bool, len(syn))
		for i, s := range syn {
			num := fmt.Sprintf("%06d", i+1)
			want := quotehub.SymbolInfo{Symbol: "SYN-" + num, Name: "Synthetic " + num, Exchange: "SIM", Currency: "USD"}
			if s != want {
				t.Fatalf("entry %d = %+v, want %+v", i, s, want)
			}
			if norm, err := quotehub.NormalizeSymbol(s.Symbol); err != nil || norm != s.Symbol {
				t.Fatalf("NormalizeSymbol(%q) = %q, %v", s.Symbol, norm, err)
			}
			if seen[s.Symbol] {
				t.Fatalf("duplicate %q", s.Symbol)
			}
			seen[s.Symbol] = true
		}
	})

	t.Run("zero or negative n gives none", func(t *testing.T) {
		if n := len(sim.Synthetic(0)) + len(sim.Synthetic(-5)); n != 0 {
			t.Fatalf("got %d symbols", n)
		}
	})

	t.Run("synthetic symbols are quoted, always open, priced 10 to 1000", func(t *testing.T) {
		clk := newClock(saturday)
		p := sim.New(sim.Options{Symbols: append(sim.Catalog(), sim.Synthetic(10000)...), Now: clk.Now})
		qs := fetch(t, p, "SYN-000001", "SYN-005000", "SYN-010000", "AAPL")
		for _, q := range qs[:3] {
			if q.Market != quotehub.MarketOpen || q.Currency != "USD" {
				t.Errorf("%s: market %q currency %q, want open USD", q.Symbol, q.Market, q.Currency)
			}
			if q.PrevClose < 9 || q.PrevClose > 1100 {
				t.Errorf("%s: prev_close %v is far from 10..1000", q.Symbol, q.PrevClose)
			}
		}
		_, err := p.Fetch(context.Background(), []string{"SYN-010001"})
		if fe, ok := err.(quotehub.FetchErrors); !ok || quotehub.ErrorCode(fe["SYN-010001"]) != quotehub.EUnknownSymbol {
			t.Errorf("SYN-010001 beyond the universe: err = %v, want unknown_symbol", err)
		}
	})
}

func TestProviderIdentity(t *testing.T) {
	cases := []struct {
		name     string
		opts     sim.Options
		maxBatch int
	}{
		{"default max batch is 100", sim.Options{Now: fixedNow}, 100},
		{"max batch follows options", sim.Options{MaxBatch: 7, Now: fixedNow}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := sim.New(tc.opts)
			if p.Name() != "sim" {
				t.Errorf("Name() = %q, want sim", p.Name())
			}
			if p.MaxBatch() != tc.maxBatch {
				t.Errorf("MaxBatch() = %d, want %d", p.MaxBatch(), tc.maxBatch)
			}
		})
	}
}

// mixed is a symbol list covering every market and tick band shape.
var mixed = []string{
	"005930.KS", "000660.KS", "207940.KS", "010130.KS", "011200.KS", "024110.KS",
	"KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-DOGE", "KRW-SHIB", "KRW-PEPE", "KRW-BTT", "KRW-VET",
	"AAPL", "INTC", "BKNG", "JPM", "PFE",
	"SYN-000001", "SYN-000002",
}

func mixedUniverse() []quotehub.SymbolInfo { return append(sim.Catalog(), sim.Synthetic(10)...) }

func TestDeterminism(t *testing.T) {
	run := func(seed int64, change bool) [][]quotehub.Quote {
		clk := newClock(wedKRXOpen)
		p := sim.New(sim.Options{Symbols: mixedUniverse(), Seed: seed, Now: clk.Now, ChangeEveryFetch: change})
		var out [][]quotehub.Quote
		for i := 0; i < 300; i++ {
			out = append(out, fetch(t, p, mixed...))
			clk.Advance(time.Duration(i%7+1) * 17 * time.Second)
		}
		return out
	}
	same := func(a, b [][]quotehub.Quote) bool {
		for i := range a {
			for j := range a[i] {
				if !a[i][j].SameValue(&b[i][j]) {
					return false
				}
			}
		}
		return true
	}

	for _, change := range []bool{false, true} {
		t.Run(fmt.Sprintf("same seed gives identical quotes (ChangeEveryFetch=%v)", change), func(t *testing.T) {
			a, b := run(42, change), run(42, change)
			if !same(a, b) {
				t.Fatal("two providers with the same seed and clock diverged")
			}
		})
	}
	t.Run("different seeds give different prices", func(t *testing.T) {
		if same(run(1, false), run(2, false)) {
			t.Fatal("seeds 1 and 2 gave identical quotes")
		}
	})
	t.Run("zero seed means seed 1", func(t *testing.T) {
		if !same(run(0, false), run(1, false)) {
			t.Fatal("seed 0 differs from seed 1")
		}
	})
}

// tickAt is the expected tick of a price, restated independently of sim.
func tickAt(exchange string, p float64) float64 {
	switch exchange {
	case quotehub.ExchangeKRX:
		for _, b := range []struct{ below, tick float64 }{{2000, 1}, {5000, 5}, {20000, 10}, {50000, 50}, {200000, 100}, {500000, 500}} {
			if p < b.below {
				return b.tick
			}
		}
		return 1000
	case quotehub.ExchangeUpbit:
		for _, b := range []struct{ atLeast, tick float64 }{
			{2e6, 1000}, {1e6, 500}, {5e5, 100}, {1e5, 50}, {1e4, 10}, {1e3, 1}, {100, 0.1},
			{10, 0.01}, {1, 0.001}, {0.1, 1e-4}, {0.01, 1e-5}, {0.001, 1e-6}, {1e-4, 1e-7},
		} {
			if p >= b.atLeast {
				return b.tick
			}
		}
		return 1e-8
	default:
		if p < 1 {
			return 0.0001
		}
		return 0.01
	}
}

func onTick(exchange string, p float64) bool {
	n := p / tickAt(exchange, p)
	return math.Abs(n-math.Round(n)) < 1e-6*math.Max(1, n/1e6)
}

func TestPricesStayPositiveAndOnTick(t *testing.T) {
	exchange := map[string]string{}
	for _, s := range mixedUniverse() {
		exchange[s.Symbol] = s.Exchange
	}
	cases := []struct {
		name       string
		volatility float64
	}{
		{"default volatility", 0},
		{"thirty times the volatility", 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// 10,000 fetches 10 s apart from Wednesday 00:00 UTC span a KRX
			// session, a NYSE session, the closes and the next KRX open.
			clk := newClock(wedKRXOpen)
			p := sim.New(sim.Options{Symbols: mixedUniverse(), Seed: 7, Now: clk.Now, Volatility: tc.volatility})
			distinct := map[string]map[float64]bool{}
			for i := 0; i < 10000; i++ {
				for _, q := range fetch(t, p, mixed...) {
					ex := exchange[q.Symbol]
					if !(q.Price > 0) || !(q.PrevClose > 0) {
						t.Fatalf("fetch %d: %s price %v prev_close %v", i, q.Symbol, q.Price, q.PrevClose)
					}
					if !onTick(ex, q.Price) || !onTick(ex, q.PrevClose) {
						t.Fatalf("fetch %d: %s price %v or prev_close %v is off tick", i, q.Symbol, q.Price, q.PrevClose)
					}
					if distinct[q.Symbol] == nil {
						distinct[q.Symbol] = map[float64]bool{}
					}
					distinct[q.Symbol][q.Price] = true
				}
				clk.Advance(10 * time.Second)
			}
			for _, s := range mixed {
				if len(distinct[s]) < 3 {
					t.Errorf("%s took only %d distinct prices", s, len(distinct[s]))
				}
			}
		})
	}
}

func TestChangeEveryFetch(t *testing.T) {
	open := []string{"005930.KS", "011200.KS", "KRW-BTC", "KRW-SHIB", "KRW-BTT", "SYN-000001"}
	cases := []struct {
		name string
		step time.Duration
	}{
		{"every fetch changes the price as the clock advances", time.Second},
		{"every fetch changes the price even when the clock stands still", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(wedKRXOpen.Add(time.Hour))
			p := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now, ChangeEveryFetch: true})
			prev := fetch(t, p, open...)
			for i := 0; i < 1000; i++ {
				clk.Advance(tc.step)
				cur := fetch(t, p, open...)
				for j := range cur {
					if cur[j].Price == prev[j].Price {
						t.Fatalf("fetch %d: %s stayed at %v", i, cur[j].Symbol, cur[j].Price)
					}
					if cur[j].TradeTime != clk.Now().UnixMilli() || cur[j].Market != quotehub.MarketOpen {
						t.Fatalf("fetch %d: %s trade_time %d market %q, want now and open", i, cur[j].Symbol, cur[j].TradeTime, cur[j].Market)
					}
				}
				prev = cur
			}
		})
	}
}

func TestUnchangedFetchKeepsValue(t *testing.T) {
	for _, sym := range []string{"005930.KS", "KRW-BTC", "SYN-000001"} {
		t.Run(sym+" sometimes does not trade and then keeps its value", func(t *testing.T) {
			clk := newClock(wedKRXOpen.Add(time.Hour))
			p := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now})
			prev := fetch(t, p, sym)[0]
			unchanged, traded := 0, 0
			for i := 0; i < 200; i++ {
				clk.Advance(time.Second)
				cur := fetch(t, p, sym)[0]
				if cur.SameValue(&prev) {
					unchanged++
				} else {
					traded++
					if cur.TradeTime != clk.Now().UnixMilli() {
						t.Fatalf("changed quote has trade_time %d, want now %d", cur.TradeTime, clk.Now().UnixMilli())
					}
				}
				prev = cur
			}
			if unchanged == 0 || traded == 0 {
				t.Fatalf("%d unchanged and %d traded fetches, want some of each", unchanged, traded)
			}
		})
	}
}

func TestClosedMarket(t *testing.T) {
	cases := []struct {
		name   string
		at     time.Time
		symbol string
		market string
	}{
		{"KRX on a Saturday is closed", saturday, "005930.KS", quotehub.MarketClosed},
		{"NASDAQ on a Saturday is closed", saturday, "AAPL", quotehub.MarketClosed},
		{"NYSE on a Saturday is closed", saturday, "JPM", quotehub.MarketClosed},
		{"KRX at 03:00 KST on a weekday is closed", wed3amKST, "005930.KS", quotehub.MarketClosed},
		{"Upbit on a Saturday is open", saturday, "KRW-BTC", quotehub.MarketOpen},
		{"Upbit at 03:00 KST on a weekday is open", wed3amKST, "KRW-BTC", quotehub.MarketOpen},
		{"synthetic on a Saturday is open", saturday, "SYN-000001", quotehub.MarketOpen},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(tc.at)
			p := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now})
			first := fetch(t, p, tc.symbol)[0]
			if first.Market != tc.market {
				t.Fatalf("market %q, want %q", first.Market, tc.market)
			}
			if tc.market != quotehub.MarketClosed {
				return
			}
			ex := exchangeOf(tc.symbol)
			if want := quotehub.CalendarOf(ex).LastClose(clk.Now()).UnixMilli(); first.TradeTime != want {
				t.Fatalf("trade_time %d, want last close %d", first.TradeTime, want)
			}
			for i := 0; i < 5; i++ {
				clk.Advance(time.Minute)
				again := fetch(t, p, tc.symbol)[0]
				if !again.SameValue(&first) {
					t.Fatalf("closed market changed:\n%+v\n%+v", first, again)
				}
			}
		})
	}

	t.Run("last close of KRX at 03:00 KST is the previous day 15:30 KST", func(t *testing.T) {
		p := sim.New(sim.Options{Now: func() time.Time { return wed3amKST }})
		q := fetch(t, p, "005930.KS")[0]
		if want := time.Date(2025, 6, 10, 15, 30, 0, 0, kst).UnixMilli(); q.TradeTime != want {
			t.Fatalf("trade_time %v, want %v", time.UnixMilli(q.TradeTime), time.UnixMilli(want))
		}
	})

	t.Run("after the close the last session price stays", func(t *testing.T) {
		clk := newClock(wedKRXOpen)
		p := sim.New(sim.Options{Now: clk.Now, ChangeEveryFetch: true})
		var last quotehub.Quote
		for i := 0; i < 100; i++ {
			last = fetch(t, p, "005930.KS")[0]
			clk.Advance(time.Minute)
		}
		clk.Set(time.Date(2025, 6, 11, 16, 0, 0, 0, kst))
		a := fetch(t, p, "005930.KS")[0]
		clk.Advance(2 * time.Hour)
		b := fetch(t, p, "005930.KS")[0]
		if a.Market != quotehub.MarketClosed || a.Price != last.Price || a.PrevClose != last.PrevClose || a.Volume != last.Volume {
			t.Fatalf("after close %+v, last in session %+v", a, last)
		}
		if !a.SameValue(&b) {
			t.Fatalf("two fetches while closed differ:\n%+v\n%+v", a, b)
		}
	})

	t.Run("a new session takes the last close as prev close", func(t *testing.T) {
		clk := newClock(wedKRXOpen)
		p := sim.New(sim.Options{Now: clk.Now, ChangeEveryFetch: true})
		var last quotehub.Quote
		for i := 0; i < 50; i++ {
			last = fetch(t, p, "005930.KS")[0]
			clk.Advance(time.Minute)
		}
		clk.Set(wedKRXOpen.AddDate(0, 0, 1).Add(time.Second))
		next := fetch(t, p, "005930.KS")[0]
		if next.Market != quotehub.MarketOpen || next.PrevClose != last.Price {
			t.Fatalf("next session prev_close %v market %q, want %v open", next.PrevClose, next.Market, last.Price)
		}
	})

	t.Run("crypto takes the price at 00:00 UTC as prev close", func(t *testing.T) {
		clk := newClock(time.Date(2025, 6, 11, 23, 0, 0, 0, time.UTC))
		p := sim.New(sim.Options{Now: clk.Now, ChangeEveryFetch: true})
		var last quotehub.Quote
		for i := 0; i < 60; i++ {
			last = fetch(t, p, "KRW-BTC")[0]
			clk.Advance(time.Minute)
		}
		next := fetch(t, p, "KRW-BTC")[0] // 00:00 UTC
		if next.PrevClose != last.Price {
			t.Fatalf("prev_close after midnight %v, want the last price %v", next.PrevClose, last.Price)
		}
	})
}

func exchangeOf(symbol string) string {
	for _, s := range mixedUniverse() {
		if s.Symbol == symbol {
			return s.Exchange
		}
	}
	return ""
}

func TestFetchErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown symbol is reported while known symbols are quoted", func(t *testing.T) {
		p := sim.New(sim.Options{Now: fixedNow})
		qs, err := p.Fetch(ctx, []string{"AAPL", "NOPE.XX", "KRW-BTC"})
		var fe quotehub.FetchErrors
		if !errors.As(err, &fe) {
			t.Fatalf("err = %v, want FetchErrors", err)
		}
		if len(fe) != 1 || quotehub.ErrorCode(fe["NOPE.XX"]) != quotehub.EUnknownSymbol {
			t.Fatalf("FetchErrors = %v, want NOPE.XX: unknown_symbol", fe)
		}
		if len(qs) != 2 || qs[0].Symbol != "AAPL" || qs[1].Symbol != "KRW-BTC" {
			t.Fatalf("quotes = %+v, want AAPL and KRW-BTC", qs)
		}
		validate(t, qs)
	})

	t.Run("a duplicated symbol is quoted once", func(t *testing.T) {
		p := sim.New(sim.Options{Now: fixedNow})
		qs, err := p.Fetch(ctx, []string{"AAPL", "AAPL"})
		if err != nil || len(qs) != 1 {
			t.Fatalf("got %d quotes, err %v; want 1 quote", len(qs), err)
		}
	})

	t.Run("too many symbols is a too_many_symbols error", func(t *testing.T) {
		p := sim.New(sim.Options{MaxBatch: 3, Now: fixedNow})
		qs, err := p.Fetch(ctx, []string{"AAPL", "MSFT", "NVDA", "AMZN"})
		if quotehub.ErrorCode(err) != quotehub.ETooManySymbols || len(qs) != 0 {
			t.Fatalf("got %d quotes, err %v; want too_many_symbols", len(qs), err)
		}
		if qs, err := p.Fetch(ctx, []string{"AAPL", "MSFT", "NVDA"}); err != nil || len(qs) != 3 {
			t.Fatalf("exactly MaxBatch: %d quotes, err %v", len(qs), err)
		}
	})

	t.Run("down fails every fetch and SetDown(false) recovers", func(t *testing.T) {
		p := sim.New(sim.Options{Down: true, Now: fixedNow})
		for i := 0; i < 3; i++ {
			if qs, err := p.Fetch(ctx, []string{"AAPL"}); quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable || len(qs) != 0 {
				t.Fatalf("down: %d quotes, err %v; want upstream_unavailable", len(qs), err)
			}
		}
		p.SetDown(false)
		fetch(t, p, "AAPL")
		p.SetDown(true)
		if _, err := p.Fetch(ctx, []string{"AAPL"}); err == nil {
			t.Fatal("SetDown(true) did not take the provider down")
		}
	})

	rates := []struct {
		name     string
		rate     float64
		min, max int // failures out of 200
	}{
		{"fail rate 1 always fails", 1, 200, 200},
		{"fail rate 0 never fails", 0, 0, 0},
		{"fail rate one half fails sometimes", 0.5, 50, 150},
		{"fail rate above 1 is clamped to always", 7, 200, 200},
	}
	for _, tc := range rates {
		t.Run(tc.name, func(t *testing.T) {
			p := sim.New(sim.Options{FailRate: tc.rate, Now: fixedNow})
			failed := 0
			for i := 0; i < 200; i++ {
				qs, err := p.Fetch(ctx, []string{"AAPL", "KRW-BTC"})
				switch {
				case err == nil:
					validate(t, qs)
				case quotehub.ErrorCode(err) == quotehub.EUpstreamUnavailable && len(qs) == 0:
					failed++
				default:
					t.Fatalf("unexpected result: %d quotes, err %v", len(qs), err)
				}
			}
			if failed < tc.min || failed > tc.max {
				t.Fatalf("%d of 200 fetches failed, want %d..%d", failed, tc.min, tc.max)
			}
		})
	}

	t.Run("SetFailRate changes later fetches", func(t *testing.T) {
		p := sim.New(sim.Options{Now: fixedNow})
		p.SetFailRate(1)
		if _, err := p.Fetch(ctx, []string{"AAPL"}); err == nil {
			t.Fatal("SetFailRate(1): fetch succeeded")
		}
		p.SetFailRate(0)
		fetch(t, p, "AAPL")
	})
}

func TestLatency(t *testing.T) {
	t.Run("a fetch takes at least the latency", func(t *testing.T) {
		p := sim.New(sim.Options{Latency: 20 * time.Millisecond, Now: fixedNow})
		start := time.Now()
		fetch(t, p, "AAPL")
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("fetch took %v, want at least 20ms", d)
		}
	})

	t.Run("a cancelled context ends the wait promptly with its error", func(t *testing.T) {
		const latency = 50 * time.Millisecond
		p := sim.New(sim.Options{Latency: latency, Now: fixedNow})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(time.Millisecond, cancel)
		start := time.Now()
		qs, err := p.Fetch(ctx, []string{"AAPL"})
		if d := time.Since(start); d >= latency {
			t.Errorf("fetch took %v, the whole latency", d)
		}
		if !errors.Is(err, context.Canceled) || len(qs) != 0 {
			t.Fatalf("got %d quotes, err %v; want context.Canceled", len(qs), err)
		}
	})

	t.Run("a deadline shorter than the latency gives DeadlineExceeded", func(t *testing.T) {
		p := sim.New(sim.Options{Latency: 50 * time.Millisecond, Now: fixedNow})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if _, err := p.Fetch(ctx, []string{"AAPL"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("an already cancelled context fails without waiting", func(t *testing.T) {
		p := sim.New(sim.Options{Now: fixedNow})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.Fetch(ctx, []string{"AAPL"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("SetLatency changes later fetches", func(t *testing.T) {
		p := sim.New(sim.Options{Now: fixedNow})
		p.SetLatency(20 * time.Millisecond)
		start := time.Now()
		fetch(t, p, "AAPL")
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("fetch took %v after SetLatency(20ms)", d)
		}
	})
}

func TestCounters(t *testing.T) {
	p := sim.New(sim.Options{MaxBatch: 3, Now: fixedNow})
	ctx := context.Background()
	p.Fetch(ctx, []string{"AAPL", "MSFT"})                 // ok
	p.Fetch(ctx, []string{"AAPL", "NOPE.XX"})              // partial
	p.Fetch(ctx, []string{"AAPL", "MSFT", "NVDA", "AMZN"}) // too many
	if p.Calls() != 3 || p.SymbolsFetched() != 8 {
		t.Fatalf("Calls() = %d, SymbolsFetched() = %d; want 3 and 8", p.Calls(), p.SymbolsFetched())
	}
}

func TestConcurrentFetch(t *testing.T) {
	const workers, rounds = 8, 300
	clk := newClock(wedKRXOpen)
	p := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now})
	var wg sync.WaitGroup
	var symbols atomic.Int64
	errs := make(chan error, workers)
	stop := make(chan struct{})
	go func() { // flip the knobs while fetches run
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetFailRate(float64(i%2) * 0.3)
			p.SetDown(false)
			p.SetLatency(0)
			time.Sleep(100 * time.Microsecond) // pacing, not ordering: the fetches meet the knobs at any point
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				n := (w+i)%len(mixed) + 1
				syms := mixed[:n]
				symbols.Add(int64(n))
				clk.Advance(time.Second)
				qs, err := p.Fetch(context.Background(), syms)
				if err != nil {
					if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
						errs <- err
						return
					}
					continue
				}
				for j := range qs {
					if err := qs[j].Validate(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p.Calls() != workers*rounds || p.SymbolsFetched() != symbols.Load() {
		t.Fatalf("Calls() = %d, SymbolsFetched() = %d; want %d and %d", p.Calls(), p.SymbolsFetched(), workers*rounds, symbols.Load())
	}
}

func BenchmarkNewWith10000Synthetic(b *testing.B) {
	syms := append(sim.Catalog(), sim.Synthetic(10000)...)
	b.ReportAllocs()
	for b.Loop() {
		sim.New(sim.Options{Symbols: syms})
	}
}

func BenchmarkFetch100(b *testing.B) {
	syms := sim.Synthetic(100)
	names := make([]string, len(syms))
	for i, s := range syms {
		names[i] = s.Symbol
	}
	clk := newClock(saturday)
	p := sim.New(sim.Options{Symbols: syms, Now: clk.Now, ChangeEveryFetch: true})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Second)
		if _, err := p.Fetch(ctx, names); err != nil {
			b.Fatal(err)
		}
	}
}

// A provider seeded with another provider's last quote continues that walk:
// its next price is within one step of the seed, its reference price is
// kept, whereas without the seed it would have started from its own price
// (a different seed here, so the jump it avoids is plain to see).
func TestSeedContinuesTheWalk(t *testing.T) {
	syms := []string{"005930.KS", "KRW-BTC", "SYN-000001"}
	clk := newClock(wedKRXOpen.Add(time.Hour))
	a := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now, Seed: 7, ChangeEveryFetch: true})
	maxStep := map[string]float64{}
	prev := fetch(t, a, syms...)
	for range 300 {
		clk.Advance(time.Second)
		cur := fetch(t, a, syms...)
		for i, q := range cur {
			maxStep[q.Symbol] = math.Max(maxStep[q.Symbol], math.Abs(q.Price-prev[i].Price))
		}
		prev = cur
	}
	last := prev

	for _, warm := range []bool{false, true} {
		name := "a provider that never quoted the symbols"
		if warm {
			name = "a provider with a walk of its own"
		}
		t.Run(name, func(t *testing.T) {
			// Walks start on the seed's history path; seed 100's runs a few
			// percent away from seed 7's for every symbol here.
			b := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now, Seed: 100, ChangeEveryFetch: true})
			unseeded := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now, Seed: 100, ChangeEveryFetch: true})
			if warm {
				fetch(t, b, syms...)
				fetch(t, unseeded, syms...)
			}
			for _, q := range last {
				b.Seed(q)
			}
			clk.Advance(time.Second)
			got := fetch(t, b, syms...)
			jumped := fetch(t, unseeded, syms...)
			for i, q := range got {
				d := math.Abs(q.Price - last[i].Price)
				t.Logf("%s: %v → %v (largest step before %v; unseeded %v)", q.Symbol, last[i].Price, q.Price, maxStep[q.Symbol], jumped[i].Price)
				if d > maxStep[q.Symbol] {
					t.Errorf("%s jumped from %v to %v after the seed; steps were at most %v", q.Symbol, last[i].Price, q.Price, maxStep[q.Symbol])
				}
				if q.PrevClose != last[i].PrevClose {
					t.Errorf("%s: prev_close %v after the seed, want %v", q.Symbol, q.PrevClose, last[i].PrevClose)
				}
				if math.Abs(jumped[i].Price-last[i].Price) <= maxStep[q.Symbol] {
					t.Errorf("%s: the unseeded provider did not jump (%v vs %v): the test shows nothing", q.Symbol, jumped[i].Price, last[i].Price)
				}
			}
		})
	}
}

// Seed ignores what it cannot use.
func TestSeedIgnoresForeignQuotes(t *testing.T) {
	clk := newClock(wedKRXOpen.Add(time.Hour))
	p := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now})
	ref := sim.New(sim.Options{Symbols: mixedUniverse(), Now: clk.Now})
	base := fetch(t, ref, "KRW-BTC")[0]
	for _, q := range []quotehub.Quote{
		{Symbol: "KRW-BTC", Price: 1, Source: "upbit", TradeTime: clk.Now().UnixMilli()},
		{Symbol: "KRW-BTC", Price: 0, Source: sim.Name},
		{Symbol: "KRW-BTC", Price: math.Inf(1), Source: sim.Name},
		{Symbol: "NOPE", Price: 5, Source: sim.Name},
	} {
		p.Seed(q)
	}
	if got := fetch(t, p, "KRW-BTC")[0]; got.Price != base.Price {
		t.Errorf("price %v after foreign seeds, want the unseeded %v", got.Price, base.Price)
	}
}
