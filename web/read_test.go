package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"quotehub"
)

// readBody is the HTTP-read form of q, as the protocol gives it.
func readBody(q quotehub.Quote, stale bool, age time.Duration) string {
	return string(q.AppendReadJSON(nil, stale, age.Milliseconds()))
}

func TestQuoteRead(t *testing.T) {
	t.Run("HitAnsweredFromTheCache", func(t *testing.T) {
		n := startNode(t, nil)
		q := quote("KRW-BTC", 143250000, 42, time.Second)
		if _, err := n.cache.Put(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/v1/quotes/KRW-BTC", "/v1/quotes/krw-btc", "/v1/quotes/%20KRW-BTC%09"} {
			resp, body := n.get(t, path)
			h := resp.Header
			if resp.StatusCode != 200 || h.Get("X-Cache") != "hit" || h.Get("Cache-Control") != "max-age=4" ||
				h.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: %d X-Cache=%q Cache-Control=%q Content-Type=%q; want 200 hit max-age=4 (5 s fresh, 1 s old)",
					path, resp.StatusCode, h.Get("X-Cache"), h.Get("Cache-Control"), h.Get("Content-Type"))
			}
			if want := readBody(q, false, time.Second); string(body) != want {
				t.Fatalf("%s: body\n%s\nwant\n%s", path, body, want)
			}
		}
	})

	t.Run("StaleAnsweredWhileTheRefreshIsHeld", func(t *testing.T) {
		n := startNode(t, nil)
		release := n.prov.hold(t)
		n.prov.set("KRW-BTC", 150)
		q := quote("KRW-BTC", 140, 42, 10*time.Second)
		if _, err := n.cache.Put(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			resp *http.Response
			body []byte
			err  error
		}
		got := make(chan answer, 1)
		go func() { // not n.get: it may not fail the test from here
			resp, err := n.client.Get(n.url("/v1/quotes/KRW-BTC"))
			if err != nil {
				got <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			got <- answer{resp, body, err}
		}()
		// The background refresh starts, and is held; the read must not be.
		select {
		case <-n.prov.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("a stale read started no refresh")
		}
		start := time.Now()
		var a answer
		select {
		case a = <-got:
			t.Logf("stale read answered %v after the held refresh started", time.Since(start))
		case <-time.After(10 * time.Second):
			release()
			<-got
			t.Fatal("a stale read waited for the upstream; it must answer at once")
		}
		if a.err != nil {
			t.Fatalf("stale read: %v", a.err)
		}
		if n.prov.ended.Load() != 0 {
			t.Fatal("the stale read answered only after its refresh had ended (it timed out upstream); it must answer at once")
		}
		h := a.resp.Header
		if a.resp.StatusCode != 200 || h.Get("X-Cache") != "stale" || h.Get("Cache-Control") != "max-age=0" {
			t.Fatalf("stale read: %d X-Cache=%q Cache-Control=%q", a.resp.StatusCode, h.Get("X-Cache"), h.Get("Cache-Control"))
		}
		if want := readBody(q, true, 10*time.Second); string(a.body) != want {
			t.Fatalf("stale body\n%s\nwant\n%s", a.body, want)
		}
		release()
		select {
		case qs := <-n.published:
			if qs[0].Symbol != "KRW-BTC" || qs[0].Price != 150 {
				t.Fatalf("published %+v after the refresh", qs)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the background refresh published nothing")
		}
		resp, body := n.get(t, "/v1/quotes/KRW-BTC")
		if resp.Header.Get("X-Cache") != "hit" || !strings.Contains(string(body), `"price":150,`) {
			t.Fatalf("after the refresh: X-Cache=%q %s", resp.Header.Get("X-Cache"), body)
		}
		if n := n.prov.calls.Load(); n != 1 {
			t.Errorf("%d upstream fetches, want the one refresh", n)
		}
	})

	t.Run("MissWaitsForTheFetch", func(t *testing.T) {
		n := startNode(t, nil)
		n.prov.set("KRW-ETH", 4500000)
		resp, body := n.get(t, "/v1/quotes/KRW-ETH")
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("X-Cache") != "miss" || h.Get("Cache-Control") != "max-age=5" {
			t.Fatalf("miss: %d X-Cache=%q Cache-Control=%q %s", resp.StatusCode, h.Get("X-Cache"), h.Get("Cache-Control"), body)
		}
		q, ok, _ := n.cache.Get(context.Background(), "KRW-ETH")
		if !ok || q.Price != 4500000 || q.FetchedAt != now.UnixMilli() {
			t.Fatalf("cached after the miss: %+v", q)
		}
		if want := readBody(q, false, 0); string(body) != want {
			t.Fatalf("miss body\n%s\nwant\n%s", body, want)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/v1/quotes/bad!")
		wantError(t, resp, body, 400, quotehub.EInvalidSymbol)
		resp, body = n.get(t, "/v1/quotes/"+strings.Repeat("A", 33))
		wantError(t, resp, body, 400, quotehub.EInvalidSymbol)
		resp, body = n.get(t, "/v1/quotes/NOPE")
		wantError(t, resp, body, 404, quotehub.EUnknownSymbol)
		if resp.Header.Get("X-Cache") != "" {
			t.Errorf("an error carries X-Cache %q", resp.Header.Get("X-Cache"))
		}
		if c := n.prov.calls.Load(); c != 0 {
			t.Errorf("%d upstream fetches for symbols that cannot be served", c)
		}
		// Known to the catalogue, unknown upstream: the fetch says so.
		resp, body = n.get(t, "/v1/quotes/KRW-XRP")
		wantError(t, resp, body, 404, quotehub.EUnknownSymbol)

		n.prov.mu.Lock()
		n.prov.fail = quotehub.Errorf(quotehub.EUpstreamUnavailable, "upstream: HTTP 502")
		n.prov.mu.Unlock()
		resp, body = n.get(t, "/v1/quotes/005930.KS")
		wantError(t, resp, body, 503, quotehub.EUpstreamUnavailable)
		if resp.Header.Get("Retry-After") != "2" {
			t.Errorf("upstream_unavailable with Retry-After %q, want 2", resp.Header.Get("Retry-After"))
		}
	})
}

// batch is the body of a batch read.
type batch struct {
	Quotes []json.RawMessage `json:"quotes"`
	Errors []struct {
		Symbol  string `json:"symbol"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func TestBatchRead(t *testing.T) {
	t.Run("QuotesAndErrorsInRequestOrder", func(t *testing.T) {
		n := startNode(t, nil)
		stale := quote("KRW-BTC", 100, 3, 7*time.Second)
		if _, err := n.cache.Put(context.Background(), stale); err != nil {
			t.Fatal(err)
		}
		n.prov.set("KRW-BTC", 101)
		n.prov.set("KRW-ETH", 200)
		resp, body := n.get(t, "/v1/quotes?symbols=KRW-BTC,bad!,krw-eth,,NOPE,KRW-BTC,KRW-XRP")
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("batch: %d X-Cache=%q Content-Type=%q", resp.StatusCode, resp.Header.Get("X-Cache"), resp.Header.Get("Content-Type"))
		}
		var b batch
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("batch body %s: %v", body, err)
		}
		eth, _, _ := n.cache.Get(context.Background(), "KRW-ETH")
		wantQuotes := []string{readBody(stale, true, 7*time.Second), readBody(eth, false, 0)}
		if len(b.Quotes) != 2 || string(b.Quotes[0]) != wantQuotes[0] || string(b.Quotes[1]) != wantQuotes[1] {
			t.Fatalf("quotes %s\nwant %v", b.Quotes, wantQuotes)
		}
		wantErrs := []struct{ sym, code string }{{"bad!", "invalid_symbol"}, {"NOPE", "unknown_symbol"}, {"KRW-XRP", "unknown_symbol"}}
		if len(b.Errors) != len(wantErrs) {
			t.Fatalf("errors %+v, want %v", b.Errors, wantErrs)
		}
		for i, w := range wantErrs {
			if e := b.Errors[i]; e.Symbol != w.sym || e.Code != w.code || e.Message == "" {
				t.Errorf("error %d = %+v, want %s %s with a message", i, e, w.sym, w.code)
			}
		}
	})

	t.Run("EveryOneFailingIsStill200", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/v1/quotes?symbols=bad!,NOPE")
		var b batch
		if resp.StatusCode != 200 || json.Unmarshal(body, &b) != nil || len(b.Errors) != 2 ||
			!strings.HasPrefix(string(body), `{"quotes":[],"errors":[`) {
			t.Fatalf("all failing: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		n := startNode(t, nil)
		for _, q := range []string{"", "?symbols=", "?symbols=,,"} {
			resp, body := n.get(t, "/v1/quotes"+q)
			wantError(t, resp, body, 400, quotehub.EBadRequest)
		}
		var many []string
		for i := range 101 {
			many = append(many, fmt.Sprintf("SYN-%03d", i))
		}
		resp, body := n.get(t, "/v1/quotes?symbols="+strings.Join(many, ","))
		wantError(t, resp, body, 400, quotehub.ETooManySymbols)
		// 100 distinct names (the 101st repeats one) are within the limit.
		resp, _ = n.get(t, "/v1/quotes?symbols="+strings.Join(append(many[:100], "syn-000"), ","))
		if resp.StatusCode != 200 {
			t.Errorf("100 distinct symbols: %d", resp.StatusCode)
		}
	})
}

func TestSymbolSearch(t *testing.T) {
	n := startNode(t, nil)
	search := func(query string) []string {
		t.Helper()
		resp, body := n.get(t, "/v1/symbols"+query)
		var r struct {
			Symbols []quotehub.SymbolInfo `json:"symbols"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil || r.Symbols == nil {
			t.Fatalf("/v1/symbols%s: %d %s", query, resp.StatusCode, body)
		}
		var syms []string
		for _, s := range r.Symbols {
			syms = append(syms, s.Symbol)
		}
		return syms
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"?q=BTC", "KRW-BTC"},
		{"?q=btc", "KRW-BTC"},
		{"?q=" + url.QueryEscape("삼성"), "005930.KS"},
		{"?q=" + url.QueryEscape("이더"), "KRW-ETH"},
		{"?q=apple", "AAPL"},
		{"?q=K", "KRW-BTC,KRW-ETH,KRW-XRP,005930.KS"}, // symbol-prefix matches first
		{"?q=zzz", ""},
		{"?limit=3", "005930.KS,AAPL,KRW-BTC"}, // the catalogue in symbol order
		{"?q=SYN&limit=0", "SYN-000"},
	} {
		if got := strings.Join(search(tc.query), ","); got != tc.want {
			t.Errorf("/v1/symbols%s = %s, want %s", tc.query, got, tc.want)
		}
	}
	if got := len(search("")); got != 20 {
		t.Errorf("default limit: %d entries, want 20", got)
	}
	if got := len(search("?limit=1000")); got != 100 {
		t.Errorf("limit=1000: %d entries, want the clamp of 100", got)
	}
	resp, body := n.get(t, "/v1/symbols?limit=ten")
	wantError(t, resp, body, 400, quotehub.EBadRequest)
	if resp, body := n.get(t, "/v1/symbols?q=zzz"); strings.TrimSpace(string(body)) != `{"symbols":[]}` {
		t.Errorf("no match: %d %s, want an empty list", resp.StatusCode, body)
	}
}
