package web_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"quotehub"
)

var update = flag.Bool("update", false, "rewrite the golden files of the tests that have one")

// TestPortfolioReadGolden: the body of GET /v1/me/portfolio, for 60
// holdings in five currencies (one without an FX quote, one converted by
// the reverse pair's quote), some unpriced, with figures of every shape
// (whole, a few decimals, long fractions, tiny and huge), is byte for
// byte the one in testdata. Only updated_at, the time of the write, is
// masked. Run with -update to rewrite the file after a change of the
// body that is meant.
func TestPortfolioReadGolden(t *testing.T) {
	n := startFollowNodeOn(t, 200, nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 11))
	currencies := []string{"KRW", "USD", "EUR", "JPY", "GBP"}
	var p quotehub.Portfolio
	p.BaseCurrency = "KRW"
	var qs []quotehub.Quote
	for i := range 60 {
		sym := fmt.Sprintf("GLD-%03d", i)
		qty := float64(r.IntN(1000)+1) / []float64{1, 10, 1000, 3}[i%4]
		cost := float64(r.IntN(1e7)) / 100
		switch i {
		case 7:
			qty, cost = 1e-9, 3e-7
		case 8:
			qty, cost = 1e15, 1e9
		}
		p.Holdings = append(p.Holdings, quotehub.Holding{Symbol: sym, Quantity: qty, AvgCost: cost, Currency: currencies[i%len(currencies)]})
		if i%9 == 4 {
			continue // unpriced
		}
		q := quotehub.Quote{Symbol: sym, Price: float64(r.IntN(1e8)) / 1000, Seq: 1, FetchedAt: 1_700_000_000_000 + int64(i), Source: "test"}
		if i%3 != 0 {
			q.PrevClose = q.Price * (0.9 + r.Float64()/5)
		}
		if i%2 == 0 {
			q.Market = quotehub.MarketOpen
		}
		qs = append(qs, q)
	}
	qs = append(qs,
		quotehub.Quote{Symbol: "FX:USDKRW", Price: 1387.25, Seq: 1, FetchedAt: 1_700_000_000_100, Source: "test"},
		quotehub.Quote{Symbol: "FX:KRWJPY", Price: 0.10731, Seq: 1, FetchedAt: 1_700_000_000_101, Source: "test"},
		quotehub.Quote{Symbol: "FX:EURKRW", Price: 1502.3333, Seq: 1, FetchedAt: 1_700_000_000_102, Source: "test"},
	)
	if _, err := n.cache.PutMany(ctx, qs); err != nil {
		t.Fatal(err)
	}
	if _, err := n.users.PutPortfolio(ctx, "alice", p, quotehub.AnyVersion); err != nil {
		t.Fatal(err)
	}
	resp, body := n.call(t, token(t, "alice", time.Hour), "GET", "/v1/me/portfolio", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	body = regexp.MustCompile(`"updated_at":"[^"]*"`).ReplaceAll(body, []byte(`"updated_at":"MASKED"`))
	const golden = "testdata/portfolio_read.golden.json"
	if *update {
		if err := os.WriteFile(golden, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("the body is not the golden one (%s):\n got %s\nwant %s", golden, body, want)
	}

	// A read of a small portfolio after that one (the reads reuse their
	// memory) carries nothing of it.
	small := quotehub.Portfolio{BaseCurrency: "USD", Holdings: []quotehub.Holding{{Symbol: "GLD-004", Quantity: 2, AvgCost: 3, Currency: "GBP"}}}
	if _, err := n.users.PutPortfolio(ctx, "bob", small, quotehub.AnyVersion); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, body = n.call(t, token(t, "bob", time.Hour), "GET", "/v1/me/portfolio", "")
		body = regexp.MustCompile(`"updated_at":"[^"]*"`).ReplaceAll(body, []byte(`"updated_at":"MASKED"`))
		const want = `{"base_currency":"USD","holdings":[{"symbol":"GLD-004","quantity":2,"avg_cost":3,"currency":"GBP"}],"version":1,"updated_at":"MASKED",` +
			`"valuation":{"positions":[{"symbol":"GLD-004","quantity":2,"avg_cost":3,"currency":"GBP","priced":false,"price":0,"value":0,"cost":0,"pnl":0,"pnl_rate":0,"day_change":0,"day_change_rate":0}],` +
			`"totals":null,"total":{"currency":"USD","value":0,"cost":0,"pnl":0,"pnl_rate":0,"day_change":0,"day_change_rate":0},"unpriced":["GLD-004"],"as_of":0}}` + "\n"
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, body, want)
		}
	}
}
