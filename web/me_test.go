package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/mysql"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/web"
)

// startUserNode starts a node whose /v1/me routes use a real embedded
// store, with tokens for alice and bob and at most 3 symbols per list.
func startUserNode(t *testing.T) *node {
	t.Helper()
	return startNode(t, func(o *web.Options) {
		o.Verifier = tokens{"t-alice": "alice", "t-bob": "bob"}
		lim := quotehub.UserLimits{MaxSymbols: 3, MaxHoldings: 3}
		st, err := sqlite.Open(context.Background(), t.TempDir(), sqlstore.Options{Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		o.Users, o.UserLimits = st, lim
	})
}

// call sends method path with body as token's user (no token if empty),
// and header pairs; it returns the response and its body.
func (n *node) call(t *testing.T, token, method, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url(path), r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantJSON checks the status and decodes the body into v.
func wantJSON(t *testing.T, resp *http.Response, body []byte, status int, v any) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, status)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
}

func TestWatchlistRoutes(t *testing.T) {
	n := startUserNode(t)
	const alice, bob = "t-alice", "t-bob"

	resp, body := n.call(t, alice, "POST", "/v1/me/watchlists", `{"name":"Coins","symbols":["krw-btc"," KRW-ETH","KRW-BTC"]}`)
	var w quotehub.Watchlist
	wantJSON(t, resp, body, http.StatusCreated, &w)
	if w.ID == "" || w.Name != "Coins" || w.Version != 1 || !slices.Equal(w.Symbols, []string{"KRW-BTC", "KRW-ETH"}) {
		t.Fatalf("created %s", body)
	}
	if resp.Header.Get("ETag") != `"1"` || resp.Header.Get("Location") != "/v1/me/watchlists/"+w.ID {
		t.Errorf("ETag %q Location %q", resp.Header.Get("ETag"), resp.Header.Get("Location"))
	}
	path := "/v1/me/watchlists/" + w.ID

	t.Run("Read", func(t *testing.T) {
		resp, body := n.call(t, alice, "GET", path, "")
		var got quotehub.Watchlist
		wantJSON(t, resp, body, http.StatusOK, &got)
		if got.ID != w.ID || resp.Header.Get("ETag") != `"1"` {
			t.Errorf("GET: %s ETag %q", body, resp.Header.Get("ETag"))
		}
		resp, _ = n.call(t, alice, "GET", path, "", "If-None-Match", `"1"`)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match of the current tag: %d, want 304", resp.StatusCode)
		}
		resp, body = n.call(t, alice, "GET", "/v1/me/watchlists", "")
		var list struct{ Watchlists []quotehub.Watchlist }
		wantJSON(t, resp, body, http.StatusOK, &list)
		tag := resp.Header.Get("ETag")
		if len(list.Watchlists) != 1 || list.Watchlists[0].ID != w.ID || !strings.HasPrefix(tag, `W/"`) {
			t.Errorf("list: %s ETag %q", body, tag)
		}
		if resp, _ = n.call(t, alice, "GET", "/v1/me/watchlists", "", "If-None-Match", tag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("list If-None-Match: %d, want 304", resp.StatusCode)
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		resp, body := n.call(t, alice, "PUT", path, `{"name":"Crypto","symbols":["KRW-XRP","KRW-BTC"]}`, "If-Match", `"1"`)
		var got quotehub.Watchlist
		wantJSON(t, resp, body, http.StatusOK, &got)
		if got.Version != 2 || got.Name != "Crypto" || !slices.Equal(got.Symbols, []string{"KRW-XRP", "KRW-BTC"}) || resp.Header.Get("ETag") != `"2"` {
			t.Fatalf("PUT: %s", body)
		}
		// The other tab still holds version 1: its write is refused whole.
		for _, tc := range []struct{ method, body, tag string }{
			{"PUT", `{"name":"Lost","symbols":["AAPL"]}`, `"1"`},
			{"PATCH", `{"add":["AAPL"]}`, `"1"`},
			{"PATCH", `{"name":"Lost"}`, `W/"2"`}, // weak tags never match If-Match
			{"PATCH", `{"name":"Lost"}`, `"two"`},
			{"DELETE", "", `"1"`},
		} {
			resp, body := n.call(t, alice, tc.method, path, tc.body, "If-Match", tc.tag)
			wantError(t, resp, body, http.StatusPreconditionFailed, quotehub.EPreconditionFailed)
		}
		resp, body = n.call(t, alice, "GET", path, "")
		wantJSON(t, resp, body, http.StatusOK, &got)
		if got.Version != 2 || got.Name != "Crypto" {
			t.Fatalf("refused writes changed the list: %s", body)
		}
	})

	t.Run("TwoTabs", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i, syms := range []string{`["AAPL"]`, `["005930.KS","KRW-ETH"]`} {
			wg.Go(func() {
				resp, _ := n.call(t, alice, "PATCH", path, `{"symbols":`+syms+`}`, "If-Match", `"2"`)
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if !slices.Equal(codes, []int{200, 412}) {
			t.Fatalf("two tabs writing version 2: %v, want one 200 and one 412", codes)
		}
	})

	t.Run("AddRemove", func(t *testing.T) {
		resp, body := n.call(t, alice, "POST", "/v1/me/watchlists", `{"name":"Edits","symbols":["AAPL"]}`)
		var e quotehub.Watchlist
		wantJSON(t, resp, body, http.StatusCreated, &e)
		p := "/v1/me/watchlists/" + e.ID
		resp, body = n.call(t, alice, "PATCH", p, `{"add":["krw-btc","AAPL","KRW-ETH"],"remove":["aapl"]}`)
		wantJSON(t, resp, body, http.StatusOK, &e)
		if !slices.Equal(e.Symbols, []string{"KRW-BTC", "KRW-ETH"}) || e.Version != 2 {
			t.Fatalf("after add/remove: %s", body)
		}
		resp, body = n.call(t, alice, "PATCH", p, `{"add":["KRW-XRP","005930.KS"]}`)
		wantError(t, resp, body, http.StatusBadRequest, quotehub.ETooManySymbols)
		resp, body = n.call(t, alice, "PATCH", p, `{"add":["NOPE"]}`)
		if msg := wantError(t, resp, body, http.StatusNotFound, quotehub.EUnknownSymbol); !strings.Contains(msg, "NOPE") {
			t.Errorf("message %q does not name the symbol", msg)
		}
		resp, body = n.call(t, alice, "PATCH", p, `{"name":"Edited","remove":["KRW-BTC"]}`, "If-Match", `"2"`)
		wantJSON(t, resp, body, http.StatusOK, &e)
		if e.Name != "Edited" || !slices.Equal(e.Symbols, []string{"KRW-ETH"}) || e.Version != 3 {
			t.Fatalf("after rename and remove: %s", body)
		}
	})

	t.Run("OtherUser", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
			resp, body := n.call(t, bob, m, path, map[bool]string{true: `{"name":"Mine","symbols":[]}`}[m == "PUT" || m == "PATCH"])
			wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
		}
		resp, body := n.call(t, bob, "GET", "/v1/me/watchlists", "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"watchlists":[]`) {
			t.Errorf("bob's lists: %d %s", resp.StatusCode, body)
		}
		resp, body = n.call(t, "", "GET", "/v1/me/watchlists", "")
		wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	})

	t.Run("BadInput", func(t *testing.T) {
		huge := `{"name":"Big","symbols":["` + strings.Repeat("A", 70<<10) + `"]}`
		for _, tc := range []struct {
			name, method, body string
			status             int
			code, mention      string
		}{
			{"UnknownSymbol", "POST", `{"name":"X","symbols":["AAPL","NOPE"]}`, 404, quotehub.EUnknownSymbol, "NOPE"},
			{"InvalidSymbol", "POST", `{"name":"X","symbols":["bad symbol!"]}`, 400, quotehub.EInvalidSymbol, "bad symbol!"},
			{"TooMany", "POST", `{"name":"X","symbols":["AAPL","KRW-BTC","KRW-ETH","KRW-XRP"]}`, 400, quotehub.ETooManySymbols, "3"},
			{"NoName", "POST", `{"symbols":["AAPL"]}`, 400, quotehub.EBadRequest, "name"},
			{"EmptyName", "POST", `{"name":"  "}`, 400, quotehub.EBadRequest, "name"},
			{"DuplicateName", "POST", `{"name":"Crypto"}`, 409, quotehub.EConflict, "Crypto"},
			{"UnknownField", "POST", `{"name":"X","owner":"bob"}`, 400, quotehub.EBadRequest, "owner"},
			{"WrongType", "POST", `{"name":"X","symbols":"AAPL"}`, 400, quotehub.EBadRequest, "symbols"},
			{"NotJSON", "POST", `name=X`, 400, quotehub.EBadRequest, "JSON"},
			{"TwoValues", "POST", `{"name":"X"} {"name":"Y"}`, 400, quotehub.EBadRequest, "JSON"},
			{"NoBody", "POST", ``, 400, quotehub.EBadRequest, "body"},
			{"TooLarge", "POST", huge, 413, quotehub.EBadRequest, "65536"},
			{"PutNeedsBoth", "PUT", `{"name":"X"}`, 400, quotehub.EBadRequest, "symbols"},
			{"PatchNothing", "PATCH", `{}`, 400, quotehub.EBadRequest, "Nothing"},
			{"PatchBoth", "PATCH", `{"symbols":[],"add":["AAPL"]}`, 400, quotehub.EBadRequest, "not both"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := "/v1/me/watchlists"
				if tc.method != "POST" {
					p = path
				}
				resp, body := n.call(t, alice, tc.method, p, tc.body)
				if msg := wantError(t, resp, body, tc.status, tc.code); !strings.Contains(msg, tc.mention) {
					t.Errorf("message %q does not mention %q", msg, tc.mention)
				}
			})
		}
		for _, id := range []string{"' OR '1'='1", "%25", "x; DROP TABLE watchlists; --"} {
			resp, body := n.call(t, alice, "GET", "/v1/me/watchlists/"+url.PathEscape(id), "")
			wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		resp, _ := n.call(t, alice, "GET", path, "")
		tag := resp.Header.Get("ETag")
		resp, body := n.call(t, alice, "DELETE", path, "", "If-Match", tag)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
		}
		resp, body = n.call(t, alice, "GET", path, "")
		wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	})
}

func TestPortfolioRoutes(t *testing.T) {
	n := startUserNode(t)
	const alice = "t-alice"
	var p quotehub.Portfolio
	resp, body := n.call(t, alice, "GET", "/v1/me/portfolio", "")
	wantJSON(t, resp, body, http.StatusOK, &p)
	if p.Version != 0 || p.BaseCurrency != "KRW" || len(p.Holdings) != 0 || resp.Header.Get("ETag") != `"0"` {
		t.Fatalf("empty portfolio: %s ETag %q", body, resp.Header.Get("ETag"))
	}
	// The currency of a holding defaults to its symbol's.
	resp, body = n.call(t, alice, "PUT", "/v1/me/portfolio",
		`{"base_currency":"usd","holdings":[{"symbol":"aapl","quantity":10,"avg_cost":150},{"symbol":"KRW-BTC","quantity":0.5,"avg_cost":90000000,"currency":"KRW"}]}`,
		"If-Match", `"0"`)
	wantJSON(t, resp, body, http.StatusOK, &p)
	want := []quotehub.Holding{{Symbol: "AAPL", Quantity: 10, AvgCost: 150, Currency: "USD"}, {Symbol: "KRW-BTC", Quantity: 0.5, AvgCost: 9e7, Currency: "KRW"}}
	if p.Version != 1 || p.BaseCurrency != "USD" || !slices.Equal(p.Holdings, want) || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("PUT portfolio: %s", body)
	}
	resp, body = n.call(t, alice, "PUT", "/v1/me/portfolio", `{"holdings":[]}`, "If-Match", `"0"`)
	wantError(t, resp, body, http.StatusPreconditionFailed, quotehub.EPreconditionFailed)

	var tr struct {
		Trade     quotehub.Trade
		Portfolio quotehub.Portfolio
	}
	resp, body = n.call(t, alice, "POST", "/v1/me/portfolio/trades", `{"symbol":"AAPL","side":"buy","quantity":10,"price":250,"time":"2026-12-01T09:30:00Z"}`, "If-Match", `"1"`)
	wantJSON(t, resp, body, http.StatusCreated, &tr)
	if tr.Trade.ID != 1 || tr.Trade.Currency != "USD" || tr.Portfolio.Holdings[0].Quantity != 20 || tr.Portfolio.Holdings[0].AvgCost != 200 ||
		resp.Header.Get("ETag") != `"2"` || !tr.Trade.Time.Equal(time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("buy: %s", body)
	}
	for _, tc := range []struct {
		body, ifMatch string
		status        int
		code          string
	}{
		{`{"symbol":"AAPL","side":"sell","quantity":21,"price":1}`, "", 409, quotehub.EConflict},
		{`{"symbol":"AAPL","side":"buy","quantity":1,"price":1}`, `"1"`, 412, quotehub.EPreconditionFailed},
		{`{"symbol":"NOPE","side":"buy","quantity":1,"price":1}`, "", 404, quotehub.EUnknownSymbol},
		{`{"symbol":"AAPL","side":"short","quantity":1,"price":1}`, "", 400, quotehub.EBadRequest},
		{`{"symbol":"AAPL","side":"buy","quantity":"1","price":1}`, "", 400, quotehub.EBadRequest},
		{`{"symbol":"AAPL","side":"buy","quantity":1,"price":1,"fee":1}`, "", 400, quotehub.EBadRequest},
	} {
		resp, body := n.call(t, alice, "POST", "/v1/me/portfolio/trades", tc.body, "If-Match", tc.ifMatch)
		wantError(t, resp, body, tc.status, tc.code)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"holdings":[{"symbol":"NOPE","quantity":1}]}`, 404, quotehub.EUnknownSymbol},
		{`{"holdings":[{"symbol":"AAPL","quantity":-1}]}`, 400, quotehub.EBadRequest},
		{`{"holdings":[{"symbol":"AAPL","quantity":1},{"symbol":"aapl","quantity":2}]}`, 400, quotehub.EBadRequest},
		{`{"base_currency":"dollar"}`, 400, quotehub.EBadRequest},
		{`{"holdings":[{"symbol":"AAPL","quantity":1},{"symbol":"KRW-BTC","quantity":1},{"symbol":"KRW-ETH","quantity":1},{"symbol":"KRW-XRP","quantity":1}]}`, 400, quotehub.ETooManySymbols},
	} {
		resp, body := n.call(t, alice, "PUT", "/v1/me/portfolio", tc.body)
		wantError(t, resp, body, tc.status, tc.code)
	}
	resp, body = n.call(t, alice, "GET", "/v1/me/portfolio", "")
	wantJSON(t, resp, body, http.StatusOK, &p)
	if p.Version != 2 || p.Holdings[0].Quantity != 20 {
		t.Fatalf("refused writes changed the portfolio: %s", body)
	}
	var ts struct{ Trades []quotehub.Trade }
	resp, body = n.call(t, alice, "GET", "/v1/me/portfolio/trades?limit=5", "")
	wantJSON(t, resp, body, http.StatusOK, &ts)
	if len(ts.Trades) != 1 || ts.Trades[0].ID != 1 {
		t.Fatalf("trades: %s", body)
	}
	resp, body = n.call(t, alice, "GET", "/v1/me/portfolio/trades?limit=0", "")
	wantError(t, resp, body, http.StatusBadRequest, quotehub.EBadRequest)
	// Bob has a portfolio of his own.
	resp, body = n.call(t, "t-bob", "GET", "/v1/me/portfolio", "")
	wantJSON(t, resp, body, http.StatusOK, &p)
	if p.Version != 0 || len(p.Holdings) != 0 {
		t.Fatalf("bob's portfolio: %s", body)
	}
}

func TestAlertRoutes(t *testing.T) {
	n := startUserNode(t)
	const alice = "t-alice"
	var r quotehub.AlertRule
	resp, body := n.call(t, alice, "POST", "/v1/me/alerts", `{"symbol":"krw-btc","kind":"above","threshold":100000000,"rearm":0.005}`)
	wantJSON(t, resp, body, http.StatusCreated, &r)
	path := fmt.Sprintf("/v1/me/alerts/%d", r.ID)
	if r.ID <= 0 || r.Symbol != "KRW-BTC" || !r.Enabled || r.Version != 1 || r.Rearm != 0.005 || resp.Header.Get("Location") != path {
		t.Fatalf("created %s", body)
	}
	resp, body = n.call(t, alice, "PATCH", path, `{"enabled":false}`, "If-Match", `"1"`)
	wantJSON(t, resp, body, http.StatusOK, &r)
	if r.Enabled || r.Version != 2 || r.Kind != quotehub.AlertAbove {
		t.Fatalf("patched %s", body)
	}
	resp, body = n.call(t, alice, "PATCH", path, `{"enabled":true}`, "If-Match", `"1"`)
	wantError(t, resp, body, http.StatusPreconditionFailed, quotehub.EPreconditionFailed)
	for _, b := range []string{`{"symbol":"AAPL","kind":"sideways","threshold":1}`, `{"symbol":"AAPL","kind":"below"}`,
		`{"symbol":"AAPL","kind":"below","threshold":-1}`, `{"symbol":"AAPL","kind":"below","threshold":1,"rearm":2}`, `{"symbol":"AAPL","kind":"move_pct","threshold":0}`} {
		resp, body = n.call(t, alice, "POST", "/v1/me/alerts", b)
		wantError(t, resp, body, http.StatusBadRequest, quotehub.EBadRequest)
	}
	resp, body = n.call(t, alice, "POST", "/v1/me/alerts", `{"symbol":"NOPE","kind":"below","threshold":1}`)
	wantError(t, resp, body, http.StatusNotFound, quotehub.EUnknownSymbol)
	resp, body = n.call(t, "t-bob", "GET", path, "")
	wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	resp, body = n.call(t, "t-bob", "PATCH", path, `{"enabled":true}`)
	wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	for _, id := range []string{"abc", "-1", "0", "1%20OR%201=1", "99999999999999999999"} {
		resp, body = n.call(t, alice, "GET", "/v1/me/alerts/"+id, "")
		wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	}
	// A move of -3 % from the previous close, re-armed 10 % of the way back.
	resp, body = n.call(t, alice, "POST", "/v1/me/alerts", `{"symbol":"AAPL","kind":"move_pct","threshold":-3,"rearm":0.1,"enabled":false}`)
	var m quotehub.AlertRule
	wantJSON(t, resp, body, http.StatusCreated, &m)
	if m.Threshold != -3 || m.Enabled || m.Kind != quotehub.AlertMovePct {
		t.Fatalf("created %s", body)
	}
	var list struct{ Alerts []quotehub.AlertRule }
	resp, body = n.call(t, alice, "GET", "/v1/me/alerts", "")
	wantJSON(t, resp, body, http.StatusOK, &list)
	if len(list.Alerts) != 2 || list.Alerts[0].ID != r.ID || list.Alerts[1].ID != m.ID {
		t.Fatalf("alerts: %s", body)
	}
	resp, body = n.call(t, alice, "DELETE", path, "", "If-Match", `"2"`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	resp, body = n.call(t, alice, "GET", path, "")
	wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
}

// TestUserStoreDown: with the store's database unreachable every route
// answers 503 unavailable with Retry-After, and quotes still answer.
func TestUserStoreDown(t *testing.T) {
	n := startNode(t, func(o *web.Options) {
		o.Verifier = tokens{"t-alice": "alice"}
		st, _, err := mysql.Open(context.Background(), "root@tcp(127.0.0.1:1)/quotehub?timeout=200ms", mysql.Pool{},
			sqlstore.Options{Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		o.Users = st
	})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/me/watchlists", ""},
		{"POST", "/v1/me/watchlists", `{"name":"X","symbols":["AAPL"]}`},
		{"PATCH", "/v1/me/watchlists/abc", `{"add":["AAPL"]}`},
		{"GET", "/v1/me/portfolio", ""},
		{"PUT", "/v1/me/portfolio", `{"holdings":[]}`},
		{"POST", "/v1/me/portfolio/trades", `{"symbol":"AAPL","side":"buy","quantity":1,"price":1}`},
		{"POST", "/v1/me/alerts", `{"symbol":"AAPL","kind":"above","threshold":1}`},
	} {
		resp, body := n.call(t, "t-alice", tc.method, tc.path, tc.body)
		wantError(t, resp, body, http.StatusServiceUnavailable, quotehub.EUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", tc.method, tc.path)
		}
	}
	n.prov.set("AAPL", 200)
	if resp, body := n.get(t, "/v1/quotes/AAPL"); resp.StatusCode != http.StatusOK {
		t.Errorf("a quote read while the user store is down: %d %s", resp.StatusCode, body)
	}
}
