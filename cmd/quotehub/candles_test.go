package main

import (
	"encoding/json"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/store/mysql/mysqltest"
)

// The wired node serves a chart's worth of the sim's candles, with
// averages, and a batch.
func TestCandles(t *testing.T) {
	n := startNode(t, nil)
	var ch struct {
		Symbol  string `json:"symbol"`
		Candles []struct {
			T      int64   `json:"t"`
			C      float64 `json:"c"`
			Closed bool    `json:"closed"`
		} `json:"candles"`
		MA map[string][]*float64 `json:"ma"`
	}
	if resp := getJSON(t, n.url("/v1/candles/005930.KS?interval=1d&count=120&ma=5,20"), &ch); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ch.Symbol != "005930.KS" || len(ch.Candles) != 120 || len(ch.MA["20"]) != 120 || ch.MA["20"][0] == nil {
		t.Fatalf("chart: %s, %d candles, ma20 %d values", ch.Symbol, len(ch.Candles), len(ch.MA["20"]))
	}
	for i := 1; i < len(ch.Candles); i++ {
		if ch.Candles[i].T <= ch.Candles[i-1].T || !ch.Candles[i-1].Closed {
			t.Fatalf("candle %d out of order or an older one open", i)
		}
	}
	var b struct {
		Charts []struct{ Symbol string } `json:"charts"`
		Errors []struct{ Symbol, Code string }
	}
	getJSON(t, n.url("/v1/candles?symbols=KRW-BTC,NOPE&interval=1h&count=24"), &b)
	if len(b.Charts) != 1 || len(b.Errors) != 1 || b.Errors[0].Code != "unknown_symbol" {
		t.Fatalf("batch: %+v", b)
	}
	var e apiError
	if resp := getJSON(t, n.url("/v1/candles/KRW-BTC?interval=2d"), &e); resp.StatusCode != 400 || e.Error.Code != "bad_request" {
		t.Errorf("interval=2d → %d %+v", resp.StatusCode, e)
	}
}

// The newest candle is open and closes at the live price (a smoke test of
// the wiring: the sim's walk starts on its history path, so early on the
// two agree anyway; history's TestLiveCandleMergesWithUpstream checks the
// merge itself).
func TestCandlesLive(t *testing.T) {
	n := startNode(t, nil)
	type quote struct {
		Price float64 `json:"price"`
	}
	type chart struct {
		Candles []struct {
			C      float64 `json:"c"`
			Closed bool    `json:"closed"`
		} `json:"candles"`
	}
	var q quote
	getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q) // makes the symbol active
	poll.Until(t, 10*time.Second, "the newest candle to close at the live price", func() bool {
		var before, after quote
		var ch chart
		getJSON(t, n.url("/v1/quotes/KRW-BTC"), &before)
		getJSON(t, n.url("/v1/candles/KRW-BTC?interval=1m&count=2"), &ch)
		getJSON(t, n.url("/v1/quotes/KRW-BTC"), &after)
		last := ch.Candles[len(ch.Candles)-1]
		return !last.Closed && (last.C == before.Price || last.C == after.Price)
	})
}

// Closed candles outlive the node: a node started on the same database
// (the embedded file, or MySQL) answers a closed range without asking its
// upstream, and with the same candles.
func TestCandlesSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"sqlite", func(t *testing.T) map[string]string { return map[string]string{"QUOTEHUB_DATA_DIR": t.TempDir()} }},
		{"mysql", func(t *testing.T) map[string]string {
			return map[string]string{"QUOTEHUB_MYSQL_DSN": mysqltest.DSN(t, "cmd_candles")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			path := "/v1/candles/000660.KS?interval=1d&count=200&to=1795996800000"
			var first, second json.RawMessage
			t.Run("first", func(t *testing.T) {
				n := startNode(t, env)
				if resp := getJSON(t, n.url(path), &first); resp.StatusCode != 200 || n.sim().CandleCalls() == 0 {
					t.Fatalf("status %d, %d upstream candle calls", resp.StatusCode, n.sim().CandleCalls())
				}
			})
			n := startNode(t, env)
			if resp := getJSON(t, n.url(path), &second); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if calls := n.sim().CandleCalls(); calls != 0 {
				t.Errorf("after a restart the upstream was asked %d times for a stored closed range", calls)
			}
			if string(first) != string(second) || len(first) < 1000 {
				t.Errorf("after a restart the chart differs:\n%.200s\n%.200s", first, second)
			}
		})
	}
}
