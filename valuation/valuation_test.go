package valuation

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"quotehub"
)

func quotes(qs ...quotehub.Quote) func(string) (quotehub.Quote, bool) {
	m := map[string]quotehub.Quote{}
	for _, q := range qs {
		m[q.Symbol] = q
	}
	return func(s string) (quotehub.Quote, bool) { q, ok := m[s]; return q, ok }
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestValue(t *testing.T) {
	holdings := []Holding{
		{Symbol: "005930.KS", Quantity: 10, AvgCost: 70000, Currency: "KRW"},
		{Symbol: "AAPL", Quantity: 2, AvgCost: 150, Currency: "USD"},
		{Symbol: "MSFT", Quantity: 1, AvgCost: 400, Currency: "USD"},
		{Symbol: "NOQUOTE", Quantity: 5, AvgCost: 1, Currency: "USD"},
	}
	v := Value(holdings, "KRW", quotes(
		quotehub.Quote{Symbol: "005930.KS", Price: 72000, PrevClose: 71000, FetchedAt: 10, Market: quotehub.MarketOpen},
		quotehub.Quote{Symbol: "AAPL", Price: 200, PrevClose: 190, FetchedAt: 30},
		quotehub.Quote{Symbol: "MSFT", Price: 380, FetchedAt: 20}, // no previous close: no day change
		quotehub.Quote{Symbol: "FX:USDKRW", Price: 1400, FetchedAt: 40},
	))
	p := v.Positions[0]
	if !p.Priced || p.Value != 720000 || p.Cost != 700000 || p.PnL != 20000 || !near(p.PnLRate, 20000.0/700000*100) ||
		p.DayChange != 10000 || !near(p.DayChangeRate, 10000.0/710000*100) || p.Market != quotehub.MarketOpen {
		t.Errorf("Samsung %+v", p)
	}
	if p := v.Positions[3]; p.Priced || p.Value != 0 || !slices.Equal(v.Unpriced, []string{"NOQUOTE"}) {
		t.Errorf("unpriced %+v, %v", p, v.Unpriced)
	}
	if len(v.Totals) != 2 || v.Totals[0].Currency != "KRW" || v.Totals[1].Currency != "USD" {
		t.Fatalf("totals %+v", v.Totals)
	}
	usd := v.Totals[1]
	// AAPL 400 (cost 300, prev 380) + MSFT 380 (cost 400, prev = value).
	if usd.Value != 780 || usd.Cost != 700 || usd.PnL != 80 || usd.DayChange != 20 || !near(usd.DayChangeRate, 20.0/760*100) {
		t.Errorf("USD total %+v", usd)
	}
	wantBase := 720000 + 780*1400.0
	if v.Base.Currency != "KRW" || !near(v.Base.Value, wantBase) || !near(v.Base.Cost, 700000+700*1400.0) ||
		!near(v.Base.DayChange, 10000+20*1400.0) || v.FX["USD"] != 1400 || len(v.Unconverted) != 0 || v.AsOf != 40 {
		t.Errorf("base %+v fx %v unconverted %v as of %d", v.Base, v.FX, v.Unconverted, v.AsOf)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Fatal(err)
	}
}

func TestFXInverseAndMissing(t *testing.T) {
	h := []Holding{{Symbol: "005930.KS", Quantity: 1, AvgCost: 1000, Currency: "KRW"}, {Symbol: "AAPL", Quantity: 1, AvgCost: 1, Currency: "USD"}}
	// Base USD with only the KRW-per-USD quote: the inverse converts KRW.
	v := Value(h, "USD", quotes(
		quotehub.Quote{Symbol: "005930.KS", Price: 1400},
		quotehub.Quote{Symbol: "AAPL", Price: 2},
		quotehub.Quote{Symbol: "FX:USDKRW", Price: 1400},
	))
	if !near(v.FX["KRW"], 1.0/1400) || !near(v.Base.Value, 3) {
		t.Errorf("inverse FX: %v, base %+v", v.FX, v.Base)
	}
	// No FX quote at all: the foreign currency is left out, and said so.
	v = Value(h, "KRW", quotes(quotehub.Quote{Symbol: "005930.KS", Price: 1400}, quotehub.Quote{Symbol: "AAPL", Price: 2}))
	if !slices.Equal(v.Unconverted, []string{"USD"}) || v.Base.Value != 1400 {
		t.Errorf("unconverted %v, base %+v", v.Unconverted, v.Base)
	}
	// Empty portfolio: zero totals, no NaN.
	v = Value(nil, "KRW", quotes())
	if v.Base.PnLRate != 0 || v.Base.DayChangeRate != 0 || len(v.Totals) != 0 {
		t.Errorf("empty %+v", v)
	}
}

func TestSymbols(t *testing.T) {
	h := []Holding{{Symbol: "A", Currency: "USD"}, {Symbol: "B", Currency: "KRW"}, {Symbol: "C", Currency: "USD"}, {Symbol: "A", Currency: "USD"}}
	want := []string{"A", "B", "C", "FX:USDKRW", "FX:KRWUSD"}
	if got := Symbols(h, "KRW"); !slices.Equal(got, want) {
		t.Errorf("Symbols = %v, want %v", got, want)
	}
}

// BenchmarkValue50 values 50 holdings in two currencies: the issue wants
// valued portfolio reads at p99 ≤ 5 ms, of which this is the arithmetic.
func BenchmarkValue50(b *testing.B) {
	var h []Holding
	var qs []quotehub.Quote
	for i := range 50 {
		cur := "KRW"
		if i%2 == 1 {
			cur = "USD"
		}
		sym := string(rune('A'+i%26)) + string(rune('A'+i/26))
		h = append(h, Holding{Symbol: sym, Quantity: float64(i + 1), AvgCost: 100, Currency: cur})
		qs = append(qs, quotehub.Quote{Symbol: sym, Price: 110, PrevClose: 105})
	}
	qs = append(qs, quotehub.Quote{Symbol: "FX:USDKRW", Price: 1400})
	q := quotes(qs...)
	b.ReportAllocs()
	for b.Loop() {
		Value(h, "KRW", q)
	}
}

// Lookup finds each symbol's quote by its place, in any order of asking,
// and reports none for a zero quote, a symbol past a short read, or a
// symbol not listed.
func TestLookup(t *testing.T) {
	syms := []string{"A", "B", "C", "FX:USDKRW", "FX:KRWUSD"}
	qs := []quotehub.Quote{{Symbol: "A", Price: 1}, {Symbol: "B", Price: 2}, {}, {Symbol: "FX:USDKRW", Price: 1400}, {Symbol: "FX:KRWUSD", Price: 0.0007}}
	quote := Lookup(syms, qs)
	for _, c := range []struct {
		sym   string
		price float64
		ok    bool
	}{
		{"A", 1, true}, {"B", 2, true}, {"C", 0, false}, {"FX:KRWUSD", 0.0007, true}, {"FX:USDKRW", 1400, true},
		{"B", 2, true}, {"A", 1, true}, {"A", 1, true}, {"NONE", 0, false}, {"FX:KRWUSD", 0.0007, true},
	} {
		if q, ok := quote(c.sym); ok != c.ok || q.Price != c.price {
			t.Errorf("%s: got %v %v, want %v %v", c.sym, q.Price, ok, c.price, c.ok)
		}
	}
	short := Lookup(syms, qs[:2])
	if _, ok := short("A"); !ok {
		t.Error("A not found in a short read")
	}
	if _, ok := short("FX:USDKRW"); ok {
		t.Error("a symbol past a short read was found")
	}
	if _, ok := Lookup(syms, nil)("A"); ok {
		t.Error("a symbol was found in no quotes")
	}
}

// A valuation through Lookup over Symbols' list is the one through a map
// of the same quotes.
func TestValueThroughLookup(t *testing.T) {
	holdings := []Holding{
		{Symbol: "005930.KS", Quantity: 10, AvgCost: 70000, Currency: "KRW"},
		{Symbol: "AAPL", Quantity: 2, AvgCost: 150, Currency: "USD"},
		{Symbol: "SAP", Quantity: 3, AvgCost: 100, Currency: "EUR"},
		{Symbol: "7203.T", Quantity: 100, AvgCost: 2000, Currency: "JPY"},
		{Symbol: "NOQUOTE", Quantity: 5, AvgCost: 1, Currency: "USD"},
	}
	all := []quotehub.Quote{
		{Symbol: "005930.KS", Price: 72000, PrevClose: 71000, FetchedAt: 10},
		{Symbol: "AAPL", Price: 200, PrevClose: 190, FetchedAt: 30},
		{Symbol: "SAP", Price: 120, FetchedAt: 31},
		{Symbol: "7203.T", Price: 2100, PrevClose: 2050, FetchedAt: 32},
		{Symbol: "FX:USDKRW", Price: 1400, FetchedAt: 40},
		{Symbol: "FX:KRWJPY", Price: 0.107, FetchedAt: 41},
		{Symbol: "FX:EURKRW", Price: 1500, FetchedAt: 42},
	}
	byMap := quotes(all...)
	for _, base := range []string{"KRW", "USD", "JPY"} {
		syms := Symbols(holdings, base)
		qs := make([]quotehub.Quote, len(syms))
		for i, s := range syms {
			qs[i], _ = byMap(s)
		}
		got, want := Value(holdings, base, Lookup(syms, qs)), Value(holdings, base, byMap)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("base %s:\n got %s\nwant %s", base, g, w)
		}
	}
}

// Revalue over a valuation of other holdings gives what Value gives,
// encoded byte for byte the same, whatever the first one held; and it
// reuses the positions' memory.
func TestRevalue(t *testing.T) {
	all := quotes(
		quotehub.Quote{Symbol: "005930.KS", Price: 72000, PrevClose: 71000, FetchedAt: 10, Market: quotehub.MarketOpen},
		quotehub.Quote{Symbol: "AAPL", Price: 200, PrevClose: 190, FetchedAt: 30},
		quotehub.Quote{Symbol: "SAP", Price: 120, FetchedAt: 31},
		quotehub.Quote{Symbol: "FX:USDKRW", Price: 1400, FetchedAt: 40},
	)
	many := []Holding{
		{Symbol: "005930.KS", Quantity: 10, AvgCost: 70000, Currency: "KRW"},
		{Symbol: "AAPL", Quantity: 2, AvgCost: 150, Currency: "USD"},
		{Symbol: "SAP", Quantity: 3, AvgCost: 100, Currency: "EUR"}, // unconverted
		{Symbol: "NOQUOTE", Quantity: 5, AvgCost: 1, Currency: "USD"},
	}
	unpriced := []Holding{{Symbol: "NOQUOTE", Quantity: 5, AvgCost: 1, Currency: "USD"}}
	cases := []struct {
		holdings []Holding
		base     string
	}{{many, "KRW"}, {unpriced, "KRW"}, {nil, "KRW"}, {many, "USD"}, {many[:1], "KRW"}, {many, "KRW"}}
	var v Valuation
	for i, c := range cases {
		before := v.Positions
		v.Revalue(c.holdings, c.base, all)
		got, err := v.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh := Value(c.holdings, c.base, all)
		want, _ := json.Marshal(fresh)
		if string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
		if cap(before) >= len(c.holdings) && len(c.holdings) > 0 && &v.Positions[0] != &before[:1][0] {
			t.Errorf("case %d: the positions were not valued in the memory there was", i)
		}
	}
}
