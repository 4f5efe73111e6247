package web

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/memory"
	"quotehub/valuation"
)

// The node's memory cache lets a valued read reuse its slice of quotes.
var _ quoteAppender = (*memory.Cache)(nil)

func sampleValuation(p quotehub.Portfolio) valuation.Valuation {
	qs := map[string]quotehub.Quote{
		"005930.KS": {Symbol: "005930.KS", Price: 72000, PrevClose: 71000, FetchedAt: 10, Market: quotehub.MarketOpen},
		"AAPL":      {Symbol: "AAPL", Price: 200.3, PrevClose: 190, FetchedAt: 30},
		"FX:USDKRW": {Symbol: "FX:USDKRW", Price: 1400.5, FetchedAt: 40},
	}
	return valuation.Value(p.Holdings, p.BaseCurrency, func(s string) (quotehub.Quote, bool) { q, ok := qs[s]; return q, ok })
}

func samplePortfolios() []quotehub.Portfolio {
	hs := []quotehub.Holding{
		{Symbol: "005930.KS", Quantity: 10, AvgCost: 70000, Currency: "KRW"},
		{Symbol: "AAPL", Quantity: 2.5, AvgCost: 1e-7, Currency: "USD"},
		{Symbol: "NOQUOTE", Quantity: 1e22, AvgCost: 1, Currency: "EUR"},
	}
	return []quotehub.Portfolio{
		{BaseCurrency: "KRW", Holdings: hs, Version: 7, UpdatedAt: time.Date(2026, 12, 3, 9, 1, 2, 345678900, time.UTC)},
		{BaseCurrency: "USD", Holdings: hs[:1], Version: 1, UpdatedAt: time.Date(2026, 12, 3, 9, 1, 2, 0, time.FixedZone("KST", 9*3600))},
		{BaseCurrency: "KRW"}, // never written: no holdings, no time
		{BaseCurrency: "KRW", Holdings: []quotehub.Holding{}}, // emptied
	}
}

// equalJSON checks that got decodes to what want decodes to, and that the
// bytes are the same.
func equalJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoded differently:\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got %s\nwant %s", got, want)
	}
}

// The valued read's body, encoded by hand, is what encoding/json made of
// the same value.
func TestPortfolioReadJSON(t *testing.T) {
	for _, p := range samplePortfolios() {
		r := &portfolioRead{Portfolio: p, Valuation: sampleValuation(p)}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		equalJSON(t, got, want)
	}
	bad := &portfolioRead{Portfolio: quotehub.Portfolio{Holdings: []quotehub.Holding{{Symbol: "A", Quantity: math.NaN()}}}}
	if _, err := bad.appendJSON(nil); err == nil {
		t.Fatal("a NaN quantity was encoded")
	}
}

// The portfolio frame, encoded by hand, is what encoding/json made of
// the frame's struct; a valuation that cannot be JSON is an error frame.
func TestPortfolioFrameJSON(t *testing.T) {
	for _, p := range samplePortfolios() {
		v := sampleValuation(p)
		want, err := json.Marshal(valuedPortfolio{Type: "portfolio", BaseCurrency: p.BaseCurrency, Version: p.Version, Valuation: v})
		if err != nil {
			t.Fatal(err)
		}
		equalJSON(t, portfolioFrame(p, v), want)
	}
	p := quotehub.Portfolio{BaseCurrency: "KRW", Holdings: []quotehub.Holding{{Symbol: "005930.KS", Quantity: math.Inf(1), Currency: "KRW"}}}
	var f struct{ Type, Code string }
	if err := json.Unmarshal(portfolioFrame(p, sampleValuation(p)), &f); err != nil || f.Type != "error" {
		t.Fatalf("frame of an infinite position: %+v %v", f, err)
	}
}
