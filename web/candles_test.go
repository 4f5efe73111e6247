package web_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/hub"
	"quotehub/refresher/upstream/sim"
	"quotehub/store/memory"
	"quotehub/web"
)

// candleNode starts a node that serves candles from the sim's history
// (KRW-XRP stands for a symbol whose upstream has no candles).
func candleNode(t *testing.T) (*node, *sim.Provider) {
	t.Helper()
	up := sim.New(sim.Options{Symbols: testCatalog(), Now: func() time.Time { return now }})
	svc := history.New(history.Options{
		Catalog: memory.NewCatalog(testCatalog()),
		Cache:   memory.NewCandleCache(func() time.Time { return now }),
		Store:   memory.NewCandleStore(),
		Now:     func() time.Time { return now },
		Sources: func(info quotehub.SymbolInfo) quotehub.CandleSource {
			if info.Symbol == "KRW-XRP" {
				return nil
			}
			return up
		},
	})
	return startNode(t, func(o *web.Options) { o.Candles = svc }), up
}

type candleJSON struct {
	T      int64   `json:"t"`
	O      float64 `json:"o"`
	H      float64 `json:"h"`
	L      float64 `json:"l"`
	C      float64 `json:"c"`
	V      float64 `json:"v"`
	Closed *bool   `json:"closed"`
}

type chartJSON struct {
	Symbol   string                `json:"symbol"`
	Interval string                `json:"interval"`
	Candles  []candleJSON          `json:"candles"`
	MA       map[string][]*float64 `json:"ma"`
	EMA      map[string][]*float64 `json:"ema"`
}

func getChart(t *testing.T, n *node, path string) chartJSON {
	t.Helper()
	resp, body := n.get(t, path)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	var ch chartJSON
	if err := json.Unmarshal(body, &ch); err != nil {
		t.Fatalf("%s: %v in %s", path, err, body)
	}
	return ch
}

func TestCandles(t *testing.T) {
	n, up := candleNode(t)

	t.Run("DaysNewestLast", func(t *testing.T) {
		ch := getChart(t, n, "/v1/candles/krw-btc?interval=1d&count=200")
		if ch.Symbol != "KRW-BTC" || ch.Interval != "1d" || len(ch.Candles) != 200 {
			t.Fatalf("got %s %s with %d candles", ch.Symbol, ch.Interval, len(ch.Candles))
		}
		for i, c := range ch.Candles {
			if c.Closed == nil || *c.Closed != (i < 199) {
				t.Fatalf("candle %d: closed %v", i, c.Closed)
			}
			if i > 0 && c.T-ch.Candles[i-1].T != 86400000 {
				t.Fatalf("candle %d is not the UTC day after %d", i, i-1)
			}
			if c.H < c.L || c.V <= 0 {
				t.Fatalf("candle %d malformed: %+v", i, c)
			}
		}
		if last := ch.Candles[199].T; last != time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
			t.Fatalf("newest starts at %v, want today 00:00 UTC", time.UnixMilli(last).UTC())
		}
	})

	t.Run("WarmReadOfClosedPeriodsCostsNoUpstreamCall", func(t *testing.T) {
		to := now.Add(-15 * 24 * time.Hour).UnixMilli()
		path := fmt.Sprintf("/v1/candles/005930.KS?interval=1h&count=300&to=%d", to)
		cold := getChart(t, n, path)
		calls := up.CandleCalls()
		warm := getChart(t, n, path)
		if up.CandleCalls() != calls {
			t.Fatalf("warm read made %d upstream calls", up.CandleCalls()-calls)
		}
		if len(warm.Candles) != 300 || !sameCandle(warm.Candles[299], cold.Candles[299]) || !*warm.Candles[299].Closed {
			t.Fatalf("warm read differs: %d candles", len(warm.Candles))
		}
		if warm.Candles[299].T > to {
			t.Fatalf("newest candle after to")
		}
	})

	t.Run("MovingAveragesAligned", func(t *testing.T) {
		ch := getChart(t, n, "/v1/candles/AAPL?interval=1d&count=30&ma=5,20&ema=12")
		for _, k := range []string{"5", "20"} {
			if len(ch.MA[k]) != 30 {
				t.Fatalf("ma %s has %d values for 30 candles", k, len(ch.MA[k]))
			}
		}
		if len(ch.EMA["12"]) != 30 {
			t.Fatalf("ema 12 has %d values", len(ch.EMA["12"]))
		}
		// Seeded from the candles before the window: no gaps at the start.
		if ch.MA["20"][0] == nil || ch.EMA["12"][0] == nil {
			t.Fatal("averages of the first candles are null although history precedes them")
		}
		sum := 0.0
		for _, c := range ch.Candles[25:] {
			sum += c.C
		}
		if got := *ch.MA["5"][29]; math.Abs(got-sum/5) > 1e-9*sum {
			t.Fatalf("ma 5 at the newest = %v, want %v", got, sum/5)
		}
	})

	t.Run("AveragesNullBeforeTheListing", func(t *testing.T) {
		listed, _, _ := up.Listed(t.Context(), "KRW-ETH")
		ch := getChart(t, n, fmt.Sprintf("/v1/candles/KRW-ETH?interval=1d&from=%d&to=%d&ma=3",
			listed.Add(-48*time.Hour).UnixMilli(), listed.Add(9*24*time.Hour).UnixMilli()))
		if len(ch.Candles) != 10 || ch.Candles[0].T != listed.UnixMilli() {
			t.Fatalf("%d candles from %v, want 10 from the listing", len(ch.Candles), time.UnixMilli(ch.Candles[0].T))
		}
		if ch.MA["3"][0] != nil || ch.MA["3"][1] != nil || ch.MA["3"][2] == nil {
			t.Fatalf("ma 3 from the listing = %v, want null, null, then values", ch.MA["3"][:3])
		}
	})

	t.Run("Batch", func(t *testing.T) {
		resp, body := n.get(t, "/v1/candles?symbols=KRW-BTC,005930.KS,NOPE,bad!,KRW-XRP&interval=1w&count=5")
		var b struct {
			Charts []chartJSON     `json:"charts"`
			Errors []hub.Rejection `json:"errors"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &b) != nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if len(b.Charts) != 2 || b.Charts[0].Symbol != "KRW-BTC" || b.Charts[1].Symbol != "005930.KS" || len(b.Charts[1].Candles) != 5 {
			t.Fatalf("charts = %+v", b.Charts)
		}
		codes := map[string]string{}
		for _, e := range b.Errors {
			codes[e.Symbol] = e.Code
		}
		if codes["NOPE"] != "unknown_symbol" || codes["bad!"] != "invalid_symbol" || codes["KRW-XRP"] != "not_found" {
			t.Fatalf("errors = %s", body)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		future := now.Add(time.Hour).UnixMilli()
		tests := []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/candles/KRW-BTC", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=2m", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1D", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&count=0", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&count=1001", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&count=ten", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&from=200&to=100", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&from=yesterday", 400, "bad_request"},
			{fmt.Sprintf("/v1/candles/KRW-BTC?interval=1d&from=%d", future), 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&to=946684800000", 400, "bad_request"}, // 2000: before the listing
			{"/v1/candles/KRW-BTC?interval=1d&ma=0", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&ema=5,x", 400, "bad_request"},
			{"/v1/candles/KRW-BTC?interval=1d&ma=251", 400, "bad_request"},
			{"/v1/candles/NOPE?interval=1d", 404, "unknown_symbol"},
			{"/v1/candles/bad!?interval=1d", 400, "invalid_symbol"},
			{"/v1/candles/KRW-XRP?interval=1d", 404, "not_found"},
			{"/v1/candles?interval=1d", 400, "bad_request"},
			{"/v1/candles?symbols=KRW-BTC&interval=1x", 400, "bad_request"},
			{"/v1/candles?symbols=" + manySymbols(21) + "&interval=1d", 400, "too_many_symbols"},
		}
		for _, tt := range tests {
			resp, body := n.get(t, tt.path)
			msg := wantError(t, resp, body, tt.status, tt.code)
			t.Logf("%s → %s", tt.path, msg)
		}
	})

	t.Run("UpstreamDown", func(t *testing.T) {
		up.SetDown(true)
		defer up.SetDown(false)
		resp, body := n.get(t, "/v1/candles/KRW-ETH?interval=1m&count=5&to=1790000000000")
		wantError(t, resp, body, 503, "upstream_unavailable")
	})
}

func sameCandle(a, b candleJSON) bool {
	return a.T == b.T && a.O == b.O && a.H == b.H && a.L == b.L && a.C == b.C && a.V == b.V && *a.Closed == *b.Closed
}

func manySymbols(n int) string {
	s := ""
	for i := range n {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("SYN-%03d", i)
	}
	return s
}

func TestCandlesNotServed(t *testing.T) {
	n := startNode(t, nil)
	resp, body := n.get(t, "/v1/candles/KRW-BTC?interval=1d")
	wantError(t, resp, body, 404, "not_found")
}
