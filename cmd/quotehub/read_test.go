package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"quotehub/internal/poll"
)

type readQuote struct {
	Symbol    string  `json:"symbol"`
	Price     float64 `json:"price"`
	Seq       uint64  `json:"seq"`
	FetchedAt int64   `json:"fetched_at"`
	Stale     *bool   `json:"stale"`
	AgeMs     *int64  `json:"age_ms"`
	Market    string  `json:"market"`
}

func TestRead(t *testing.T) {
	t.Run("MissHitStale", func(t *testing.T) {
		// A long refresh interval keeps the loop from refreshing, so the
		// read path alone decides.
		n := startNode(t, map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "1h", "QUOTEHUB_FRESHNESS": "300ms", "QUOTEHUB_SIM_LATENCY": "300ms"})
		var q readQuote
		resp := getJSON(t, n.url("/v1/quotes/krw-btc"), &q)
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "miss" || q.Symbol != "KRW-BTC" || q.Stale == nil || *q.Stale || q.AgeMs == nil {
			t.Fatalf("first read: %d %s %+v", resp.StatusCode, resp.Header.Get("X-Cache"), q)
		}
		resp = getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q)
		if resp.Header.Get("X-Cache") != "hit" || resp.Header.Get("Cache-Control") != "max-age=0" || *q.Stale {
			t.Fatalf("second read: %s %s %+v", resp.Header.Get("X-Cache"), resp.Header.Get("Cache-Control"), q)
		}
		calls, entered := n.sim().FetchCount("KRW-BTC"), n.sim().Calls()
		time.Sleep(400 * time.Millisecond) // not ordering: the value ages past the 300 ms freshness on the node's clock
		// 20 concurrent stale reads while the (slow) refresh runs: all
		// answered at once with the stale value, and exactly one background
		// refresh.
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var sq readQuote
				resp := getJSON(t, n.url("/v1/quotes/KRW-BTC"), &sq)
				if resp.Header.Get("X-Cache") != "stale" || sq.Stale == nil || !*sq.Stale || *sq.AgeMs < 300 || sq.Seq != q.Seq {
					t.Errorf("stale read: %s %+v", resp.Header.Get("X-Cache"), sq)
				}
			}()
		}
		wg.Wait()
		poll.Until(t, 5*time.Second, "the background refresh", func() bool { return n.sim().FetchCount("KRW-BTC") == calls+1 })
		// Calls counts a fetch as it enters the provider, before the 300 ms
		// latency: any other refresh the reads started, started before the
		// first one landed, is counted by now.
		if got := n.sim().Calls(); got != entered+1 {
			t.Errorf("%d background refreshes for 20 stale reads, want 1", got-entered)
		}
		// The refreshed value is read next: a hit, or stale again when the
		// machine took longer than the freshness to get there (the fetch
		// is stamped when it starts, 300 ms before it lands).
		old := q.Seq
		resp = getJSON(t, n.url("/v1/quotes/KRW-BTC"), &q)
		stale := 20.0
		switch c := resp.Header.Get("X-Cache"); {
		case q.Seq <= old:
			t.Errorf("after the refresh: seq %d, the refreshed value is newer than %d", q.Seq, old)
		case c == "stale":
			stale++
			t.Logf("after the refresh: stale (%d ms old), on a busy machine", *q.AgeMs)
		case c != "hit":
			t.Errorf("after the refresh: %s", c)
		}
		if n.metric("quotehub_cache_reads_total", "result", "stale") != stale || n.metric("quotehub_cache_reads_total", "result", "miss") != 1 {
			t.Errorf("cache read metrics: stale=%v (want %v) miss=%v", n.metric("quotehub_cache_reads_total", "result", "stale"), stale, n.metric("quotehub_cache_reads_total", "result", "miss"))
		}
	})

	t.Run("SingleFlightForConcurrentColdReads", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "1h", "QUOTEHUB_SIM_LATENCY": "200ms"})
		// Reads that arrive while the fetch runs share it (a miss); one that
		// a busy machine starts after it landed is a hit. Either way, one
		// fetch and one value.
		var wg sync.WaitGroup
		var mu sync.Mutex
		seqs, misses := map[uint64]bool{}, 0
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var q readQuote
				resp := getJSON(t, n.url("/v1/quotes/KRW-XRP"), &q)
				c := resp.Header.Get("X-Cache")
				if resp.StatusCode != 200 || (c != "miss" && c != "hit") || q.Seq != uint64(q.FetchedAt) {
					t.Errorf("cold read: %d %s %+v", resp.StatusCode, c, q)
				}
				mu.Lock()
				seqs[q.Seq] = true
				if c == "miss" {
					misses++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		t.Logf("%d of 100 concurrent cold reads shared the fetch", misses)
		if misses == 0 || len(seqs) != 1 {
			t.Errorf("%d misses, %d distinct values; want the fetch shared and one value", misses, len(seqs))
		}
		if got := n.sim().Calls(); got != 1 {
			t.Errorf("provider called %d times for 100 concurrent cold reads, want 1", got)
		}
	})

	t.Run("SlowUpstreamTimesOutButNeverBlocksCachedReads", func(t *testing.T) {
		n := startNode(t, map[string]string{
			"QUOTEHUB_REFRESH_INTERVAL": "1h", "QUOTEHUB_FETCH_TIMEOUT": "100ms", "QUOTEHUB_FRESHNESS": "10ms",
			"QUOTEHUB_SIM_LATENCY": "400ms",
		})
		start := time.Now()
		var e apiError
		resp := getJSON(t, n.url("/v1/quotes/KRW-SOL"), &e)
		if took := time.Since(start); resp.StatusCode != 503 || e.Error.Code != "upstream_unavailable" || resp.Header.Get("Retry-After") == "" || took > time.Second {
			t.Fatalf("cold read of a slow upstream: %d %+v in %s", resp.StatusCode, e, took)
		}
		// The fetch goes on in the background and fills the cache.
		poll.Until(t, 5*time.Second, "the slow fetch to land", func() bool {
			return getJSON(t, n.url("/v1/quotes/KRW-SOL"), nil).StatusCode == 200
		})
		n.sim().SetLatency(3 * time.Second)
		time.Sleep(20 * time.Millisecond) // not ordering: the value ages past the 10 ms freshness
		start = time.Now()
		var q readQuote
		resp = getJSON(t, n.url("/v1/quotes/KRW-SOL"), &q)
		if took := time.Since(start); resp.Header.Get("X-Cache") != "stale" || took > 500*time.Millisecond {
			t.Fatalf("stale read with a slow upstream: %s in %s", resp.Header.Get("X-Cache"), took)
		}
	})

	t.Run("DownUpstream", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "1h", "QUOTEHUB_FRESHNESS": "10ms"})
		getJSON(t, n.url("/v1/quotes/KRW-ETH"), nil)
		n.sim().SetDown(true)
		var e apiError
		resp := getJSON(t, n.url("/v1/quotes/KRW-DOGE"), &e)
		if resp.StatusCode != 503 || e.Error.Code != "upstream_unavailable" {
			t.Fatalf("cold read, upstream down: %d %+v", resp.StatusCode, e)
		}
		time.Sleep(20 * time.Millisecond) // not ordering: the value ages past the 10 ms freshness
		var q readQuote
		resp = getJSON(t, n.url("/v1/quotes/KRW-ETH"), &q)
		if resp.StatusCode != 200 || !*q.Stale {
			t.Fatalf("cached read, upstream down: %d %+v", resp.StatusCode, q)
		}
		var batch struct {
			Quotes []readQuote         `json:"quotes"`
			Errors []map[string]string `json:"errors"`
		}
		resp = getJSON(t, n.url("/v1/quotes?symbols=KRW-ETH,KRW-DOGE"), &batch)
		if resp.StatusCode != 200 || len(batch.Quotes) != 1 || len(batch.Errors) != 1 || batch.Errors[0]["code"] != "upstream_unavailable" || batch.Errors[0]["symbol"] != "KRW-DOGE" {
			t.Fatalf("batch, upstream down: %d %+v", resp.StatusCode, batch)
		}
	})

	t.Run("BadSymbols", func(t *testing.T) {
		n := startNode(t, nil)
		for _, tc := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/quotes/bad!", 400, "invalid_symbol"},
			{"/v1/quotes/" + strings.Repeat("A", 33), 400, "invalid_symbol"},
			{"/v1/quotes/NOPE", 404, "unknown_symbol"},
			{"/v1/quotes/%E2%82%AC", 400, "invalid_symbol"},
			{"/v1/nothing", 404, "not_found"},
		} {
			var e apiError
			resp := getJSON(t, n.url(tc.path), &e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%s → %d %+v", tc.path, resp.StatusCode, e)
			}
		}
	})

	t.Run("Batch", func(t *testing.T) {
		n := startNode(t, nil)
		var batch struct {
			Quotes []readQuote         `json:"quotes"`
			Errors []map[string]string `json:"errors"`
		}
		resp := getJSON(t, n.url("/v1/quotes?symbols=KRW-BTC,krw-btc,,AAPL,x!,NOPE"), &batch)
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "" || len(batch.Quotes) != 2 || len(batch.Errors) != 2 ||
			batch.Quotes[0].Symbol != "KRW-BTC" || batch.Quotes[1].Symbol != "AAPL" ||
			batch.Errors[0]["symbol"] != "x!" || batch.Errors[0]["code"] != "invalid_symbol" ||
			batch.Errors[1]["symbol"] != "NOPE" || batch.Errors[1]["code"] != "unknown_symbol" {
			t.Fatalf("batch = %d %+v", resp.StatusCode, batch)
		}
		resp = getJSON(t, n.url("/v1/quotes?symbols=x!"), &batch)
		if resp.StatusCode != 200 || len(batch.Quotes) != 0 || batch.Quotes == nil || len(batch.Errors) != 1 {
			t.Fatalf("all failing: %d %+v", resp.StatusCode, batch)
		}
		var many []string
		for i := range 101 {
			many = append(many, fmt.Sprintf("S%d", i))
		}
		for _, tc := range []struct{ query, code string }{
			{"", "bad_request"}, {"?symbols=", "bad_request"}, {"?symbols=" + strings.Join(many, ","), "too_many_symbols"},
		} {
			var e apiError
			resp := getJSON(t, n.url("/v1/quotes"+tc.query), &e)
			if resp.StatusCode != 400 || e.Error.Code != tc.code {
				t.Errorf("%.40s → %d %+v", tc.query, resp.StatusCode, e)
			}
		}
	})
}

func TestSymbols(t *testing.T) {
	n := startNode(t, nil)
	type list struct {
		Symbols []struct {
			Symbol, Name, Exchange, Currency string
		} `json:"symbols"`
	}
	var l list
	getJSON(t, n.url("/v1/symbols?q=btc"), &l)
	if len(l.Symbols) == 0 || l.Symbols[0].Symbol != "KRW-BTC" || l.Symbols[0].Currency != "KRW" || l.Symbols[0].Exchange != "UPBIT" {
		t.Errorf("q=btc → %+v", l)
	}
	getJSON(t, n.url("/v1/symbols?q="+"%EC%82%BC%EC%84%B1"), &l) // 삼성
	found := false
	for _, s := range l.Symbols {
		found = found || s.Symbol == "005930.KS"
	}
	if !found {
		t.Errorf("q=삼성 does not find 005930.KS: %+v", l)
	}
	getJSON(t, n.url("/v1/symbols?q=A"), &l)
	if len(l.Symbols) != 20 || !strings.HasPrefix(l.Symbols[0].Symbol, "A") {
		t.Errorf("q=A → %d symbols, first %+v; want 20, prefix matches first", len(l.Symbols), l.Symbols[0])
	}
	for i := 1; i < len(l.Symbols); i++ {
		a, b := l.Symbols[i-1].Symbol, l.Symbols[i].Symbol
		if strings.HasPrefix(a, "A") == strings.HasPrefix(b, "A") && a > b {
			t.Errorf("not in symbol order: %s before %s", a, b)
		}
		if !strings.HasPrefix(a, "A") && strings.HasPrefix(b, "A") {
			t.Errorf("a non-prefix match %s before the prefix match %s", a, b)
		}
	}
	getJSON(t, n.url("/v1/symbols?limit=1000"), &l)
	if len(l.Symbols) != 100 {
		t.Errorf("limit=1000 → %d, want clamped to 100", len(l.Symbols))
	}
	getJSON(t, n.url("/v1/symbols?q=zzzzzz"), &l)
	if l.Symbols == nil || len(l.Symbols) != 0 {
		t.Errorf("no match → %+v, want []", l)
	}
	var e apiError
	if resp := getJSON(t, n.url("/v1/symbols?limit=ten"), &e); resp.StatusCode != 400 || e.Error.Code != "bad_request" {
		t.Errorf("limit=ten → %d %+v", resp.StatusCode, e)
	}
}

func TestOperations(t *testing.T) {
	n := startNode(t, nil)
	if resp := getJSON(t, n.url("/healthz"), nil); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	var ready map[string]any
	if resp := getJSON(t, n.url("/readyz"), &ready); resp.StatusCode != 200 || ready["ready"] != true {
		t.Errorf("readyz %d %v", resp.StatusCode, ready)
	}
	getJSON(t, n.url("/v1/quotes/KRW-BTC"), nil)
	c := dialWS(t, n, "?symbols=KRW-BTC", nil)
	c.next("welcome")
	c.next("subscribed")
	c.next("quotes")
	resp, err := http.Get(n.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	for _, name := range []string{
		"quotehub_connections", "quotehub_subscriptions", "quotehub_active_symbols", "quotehub_quotes_delivered_total",
		"quotehub_quotes_conflated_total", "quotehub_slow_consumer_disconnects_total", "quotehub_upstream_requests_total",
		"quotehub_upstream_symbols_fetched_total", "quotehub_cache_reads_total", "quotehub_delivery_latency_seconds",
		"quotehub_refresh_owned_symbols", "quotehub_http_request_duration_seconds", "quotehub_refresh_duration_seconds",
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if !strings.Contains(b.String(), "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	n.web.Drain()
	if resp := getJSON(t, n.url("/readyz"), &ready); resp.StatusCode != 503 || ready["ready"] != false {
		t.Errorf("readyz while draining: %d %v", resp.StatusCode, ready)
	}
}

// TestCORS: browsers on allowed origins may read and stream across
// origins; others get no CORS grant; a method other than GET is refused.
func TestCORS(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_ALLOWED_ORIGINS": "*.example.com,https://exact.test"})
	for _, tc := range []struct {
		origin string
		allow  bool
	}{
		{"https://app.example.com", true},
		{"https://exact.test", true},
		{"http://exact.test", false}, // the pattern names the scheme
		{"https://evil.test", false},
		{"http://" + n.addr, true}, // same host
	} {
		req, _ := http.NewRequest("GET", n.url("/v1/quotes/KRW-BTC"), nil)
		req.Header.Set("Origin", tc.origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if (got == tc.origin) != tc.allow || (!tc.allow && got != "") {
			t.Errorf("Origin %s: Access-Control-Allow-Origin %q, want allowed=%v", tc.origin, got, tc.allow)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("Origin %s: no Vary: Origin", tc.origin)
		}
	}
	resp, err := http.Post(n.url("/v1/quotes/KRW-BTC"), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	_ = decodeBody(resp, &e)
	if resp.StatusCode != http.StatusMethodNotAllowed || e.Error.Code != "bad_request" {
		t.Errorf("POST: %d %+v, want 405 bad_request", resp.StatusCode, e)
	}
}
