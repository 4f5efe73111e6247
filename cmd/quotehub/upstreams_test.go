package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/refresher/upstream/upbit/upbittest"
	"quotehub/refresher/upstream/yahoo/yahootest"
)

// upstreamFakes starts the fake Upbit and Yahoo for a test.
func upstreamFakes(t *testing.T) (*upbittest.Server, *yahootest.Server) {
	t.Helper()
	u := upbittest.New(upbittest.Options{TickEvery: 50 * time.Millisecond, PerSecond: 10})
	y := yahootest.New(yahootest.Options{Budget: -1})
	t.Cleanup(func() { u.Close(); y.Close() })
	return u, y
}

func upstreamEnv(u *upbittest.Server, y *yahootest.Server, extra map[string]string) map[string]string {
	env := map[string]string{
		"QUOTEHUB_PROVIDERS": "upbit,yahoo", "QUOTEHUB_UPBIT_URL": u.URL(), "QUOTEHUB_UPBIT_WS_URL": u.WSURL(),
		"QUOTEHUB_YAHOO_URL": y.URL(), "QUOTEHUB_REFRESH_INTERVAL": "200ms", "QUOTEHUB_SIM_EVERY_TICK": "false",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestUpstreamsEndToEnd: with QUOTEHUB_PROVIDERS=upbit,yahoo a node serves
// Upbit markets (streamed) and stocks (polled from Yahoo) from the fakes.
func TestUpstreamsEndToEnd(t *testing.T) {
	u, y := upstreamFakes(t)
	n := startNode(t, upstreamEnv(u, y, nil))

	var list struct {
		Symbols []struct{ Symbol, Name, Exchange string } `json:"symbols"`
	}
	getJSON(t, n.url("/v1/symbols?q=KRW-BTC"), &list)
	if len(list.Symbols) == 0 || list.Symbols[0].Symbol != "KRW-BTC" || list.Symbols[0].Exchange != "UPBIT" {
		t.Fatalf("catalogue lacks Upbit's KRW-BTC: %+v", list)
	}

	c := dialWS(t, n, "?symbols=KRW-BTC,KRW-ETH,AAPL,005930.KS", nil)
	c.next("welcome")
	if s := c.next("subscribed"); len(s.Symbols) != 4 {
		t.Fatalf("subscribed = %s", short(s.raw))
	}
	sources := map[string]string{}
	counts := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (counts["KRW-BTC"] < 5 || len(sources) < 4) {
		f := c.must(5 * time.Second)
		for _, q := range f.Quotes {
			sym := q["symbol"].(string)
			sources[sym] = q["source"].(string)
			counts[sym]++
		}
	}
	want := map[string]string{"KRW-BTC": "upbit", "KRW-ETH": "upbit", "AAPL": "yahoo", "005930.KS": "yahoo"}
	for sym, src := range want {
		if sources[sym] != src {
			t.Errorf("%s came from %q, want %q", sym, sources[sym], src)
		}
	}
	if counts["KRW-BTC"] < 5 {
		t.Errorf("KRW-BTC: %d quotes, want a stream of them", counts["KRW-BTC"])
	}
	sub := strings.Join(u.LastSubscription(), ",")
	if !strings.Contains(sub, "KRW-BTC") || !strings.Contains(sub, "KRW-ETH") {
		t.Errorf("Upbit stream subscription = %q, want KRW-BTC and KRW-ETH", sub)
	}
	// Streamed symbols are not polled while the stream is up: at most the
	// first REST fetch before the stream delivered. The window is 20 of
	// the stream's quotes (a tick every 50 ms), some 5 refresh intervals.
	before, start := u.TickerRequests(), time.Now()
	readQuotesOf(c, "KRW-BTC", 20)
	if got := u.TickerRequests() - before; got > 1 {
		t.Errorf("%d Upbit REST requests in %v, while 20 quotes were streamed", got, time.Since(start))
	}
	if y.RequestsFor("AAPL") == 0 || y.RequestsFor("005930.KS") == 0 {
		t.Error("the stocks were not fetched from Yahoo")
	}
}

// TestUpbitStreamFallsBackToPolling: while Upbit's WebSocket is down the
// node polls REST at the refresh interval; when it is back, polling stops.
func TestUpbitStreamFallsBackToPolling(t *testing.T) {
	u, y := upstreamFakes(t)
	n := startNode(t, upstreamEnv(u, y, map[string]string{"QUOTEHUB_PROVIDERS": "upbit"}))
	c := dialWS(t, n, "?symbols=KRW-BTC", nil)
	c.next("welcome")
	c.next("subscribed")
	poll.Until(t, 10*time.Second, "the stream", func() bool { return u.OpenStreams() == 1 })
	u.SetSilent(true) // the socket stays open but delivers nothing...
	u.DropStream()    // ...and is then dropped mid-message
	before := u.TickerRequests()
	poll.Until(t, 10*time.Second, "REST polling while the stream is down", func() bool { return u.TickerRequests() >= before+3 })
	for i := 0; i < 3; i++ { // prices keep moving for the client
		if f := c.next("quotes"); len(f.Quotes) == 0 {
			t.Fatal("empty quotes frame")
		}
	}
	u.SetSilent(false)
	poll.Until(t, 15*time.Second, "the stream to be back", func() bool { return u.OpenStreams() == 1 })
	readQuotesOf(c, "KRW-BTC", 5) // a poll under way when the stream came back lands
	// The window is 20 of the stream's quotes (a tick every 50 ms), some 5
	// refresh intervals.
	settled, start := u.TickerRequests(), time.Now()
	readQuotesOf(c, "KRW-BTC", 20)
	if got := u.TickerRequests() - settled; got > 1 {
		t.Errorf("%d REST requests in %v after the stream came back, while 20 quotes were streamed", got, time.Since(start))
	}
}

// TestUpbitPollingCost: 36 KRW markets polled cost one REST request per
// refresh interval, however large the catalogue (here 10,000 more markets).
func TestUpbitPollingCost(t *testing.T) {
	all := upbittest.DefaultMarkets()
	for i := range 10000 {
		all = append(all, upbittest.Market{Code: fmt.Sprintf("KRW-X%05d", i), KoreanName: "합성", EnglishName: "Synthetic", Price: 1000})
	}
	u := upbittest.New(upbittest.Options{Markets: all, PerSecond: 10})
	y := yahootest.New(yahootest.Options{Budget: -1})
	t.Cleanup(func() { u.Close(); y.Close() })
	n := startNode(t, upstreamEnv(u, y, map[string]string{
		"QUOTEHUB_PROVIDERS": "upbit", "QUOTEHUB_UPBIT_MODE": "poll", "QUOTEHUB_REFRESH_INTERVAL": "250ms",
	}))
	if got := n.catalog.Len(); got < 10036 {
		t.Fatalf("catalogue has %d entries, want Upbit's 10,000+ markets", got)
	}
	markets := upbittest.MarketCodes("KRW")[:36]
	c := dialWS(t, n, "?symbols="+strings.Join(markets, ","), nil)
	c.next("welcome")
	if s := c.next("subscribed"); len(s.Symbols) != 36 {
		t.Fatalf("subscribed %d of 36", len(s.Symbols))
	}
	// Measured once polling runs, over 12 refresh intervals: a rate, so a
	// wait on the clock, with a generous bound and the figure logged.
	poll.Until(t, 10*time.Second, "polling to start", func() bool { return u.TickerRequests() >= 2 })
	r0, m0, t0 := u.TickerRequests(), u.MarketsRequested(), time.Now()
	time.Sleep(3 * time.Second)
	r1, m1, t1 := u.TickerRequests(), u.MarketsRequested(), time.Now()
	intervals := t1.Sub(t0).Seconds() / 0.25
	perInterval := float64(r1-r0) / intervals
	t.Logf("Upbit REST, 36 active of %d catalogued markets: %.2f requests per refresh interval, %.1f markets per request, %d 429s",
		n.catalog.Len(), perInterval, float64(m1-m0)/float64(r1-r0), u.Status(429))
	// A round the machine delays can split the 36 into two requests (their
	// due times drift apart), and the counters are read one after the
	// other: the cost is judged as about one request per interval, each
	// symbol fetched about once per interval, never the catalogue.
	marketsPerInterval := float64(m1-m0) / intervals
	if perInterval < 0.5 || perInterval > 1.5 || marketsPerInterval < 18 || marketsPerInterval > 54 {
		t.Errorf("%.2f requests per interval carrying %.1f markets per interval (%d for %d requests); want about 1 request of 36 markets per interval",
			perInterval, marketsPerInterval, m1-m0, r1-r0)
	}
	if u.Status(429) != 0 || u.Status(418) != 0 {
		t.Errorf("the fake answered %d 429s and %d 418s", u.Status(429), u.Status(418))
	}
}

// TestUpstreamDownServesStale: with the upstream down, reads of cached
// symbols answer stale values at once, the breaker stops the refresher from
// hammering it, and cold reads fail with upstream_unavailable.
func TestUpstreamDownServesStale(t *testing.T) {
	u, y := upstreamFakes(t)
	n := startNode(t, upstreamEnv(u, y, map[string]string{
		"QUOTEHUB_PROVIDERS": "upbit", "QUOTEHUB_UPBIT_MODE": "poll", "QUOTEHUB_REFRESH_INTERVAL": "100ms",
		"QUOTEHUB_FRESHNESS": "300ms", "QUOTEHUB_FETCH_TIMEOUT": "500ms",
	}))
	var q readQuote
	if resp := getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q); resp.StatusCode != 200 {
		t.Fatalf("read: %d", resp.StatusCode)
	}
	u.SetDown(true)
	poll.Until(t, 10*time.Second, "the breaker to open after a few failed refreshes", func() bool {
		return n.metric("quotehub_upstream_breaker_state", "provider", "upbit") == 2
	})
	// The window is 10 of the refresher's attempts (one per 100 ms
	// interval), which the open breaker answers itself.
	before, asked, start := u.Requests(), n.metric("quotehub_upstream_requests_total"), time.Now()
	poll.Until(t, 10*time.Second, "10 more refresh attempts", func() bool {
		return n.metric("quotehub_upstream_requests_total") >= asked+10
	})
	t.Logf("%d requests reached the down upstream in %v, over 10 refresh attempts", u.Requests()-before, time.Since(start))
	if got := u.Requests() - before; got > 3 {
		t.Errorf("%d requests to a down upstream in %v, over 10 refresh attempts; the breaker should hold them back", got, time.Since(start))
	}
	start = time.Now()
	resp := getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q)
	if resp.StatusCode != 200 || q.Stale == nil || !*q.Stale || time.Since(start) > 200*time.Millisecond {
		t.Errorf("cached read with the upstream down: %d %+v in %s", resp.StatusCode, q, time.Since(start))
	}
	var e apiError
	if resp := getJSON(t, n.url("/v1/quotes/KRW-ETH"), &e); resp.StatusCode != 503 || e.Error.Code != "upstream_unavailable" {
		t.Errorf("cold read with the upstream down: %d %+v", resp.StatusCode, e)
	}
	if got := n.metric("quotehub_upstream_breaker_state", "provider", "upbit"); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	u.SetDown(false)
	poll.Until(t, 30*time.Second, "fresh values after the upstream came back", func() bool {
		var q readQuote
		resp := getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q)
		return resp.StatusCode == 200 && q.Stale != nil && !*q.Stale
	})
}

// readQuotesOf reads frames until k quotes of sym have arrived: a window
// measured by what the client receives rather than by a sleep.
func readQuotesOf(c *wsClient, sym string, k int) {
	c.t.Helper()
	for got := 0; got < k; {
		for _, q := range c.next("quotes").Quotes {
			if q["symbol"] == sym {
				got++
			}
		}
	}
}

// TestYahooQuotesUSDKRW: with Yahoo as the stock provider, the base
// currency's FX quote FX:USDKRW is routed to Yahoo and fetched as KRW=X.
func TestYahooQuotesUSDKRW(t *testing.T) {
	syms := append(yahootest.DefaultSymbols(), yahootest.Symbol{Symbol: "KRW=X", Name: "USD/KRW", Exchange: "NYSE",
		ExchangeName: "CCY", FullExchangeName: "CCY", Currency: "KRW", Price: 1391.5, PrevClose: 1388})
	y := yahootest.New(yahootest.Options{Budget: -1, Symbols: syms})
	t.Cleanup(y.Close)
	n := startNode(t, map[string]string{"QUOTEHUB_PROVIDERS": "yahoo", "QUOTEHUB_YAHOO_URL": y.URL(),
		"QUOTEHUB_REFRESH_INTERVAL": "200ms", "QUOTEHUB_SIM_EVERY_TICK": "false"})
	c := dialWS(t, n, "?symbols=FX:USDKRW", nil)
	c.next("welcome")
	if s := c.next("subscribed"); len(s.Symbols) != 1 {
		t.Fatalf("subscribed = %s", short(s.raw))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no FX:USDKRW quote from Yahoo within 10 s")
		}
		f := c.must(5 * time.Second)
		if len(f.Quotes) > 0 {
			q := f.Quotes[0]
			if q["symbol"] != "FX:USDKRW" || q["source"] != "yahoo" || q["currency"] != "KRW" {
				t.Fatalf("quote %v", q)
			}
			break
		}
	}
	if y.RequestsFor("KRW=X") == 0 {
		t.Error("Yahoo was not asked for KRW=X")
	}
}
