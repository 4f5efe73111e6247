package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"quotehub/auth"
	"quotehub/internal/poll"
	"quotehub/store/mysql/mysqltest"
)

// followSecret signs the tokens of the following tests.
const followSecret = "follow-test-secret-of-at-least-32-bytes"

func followToken(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(followSecret), auth.Claims{Subject: user, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// callJSON sends method url with a JSON body as tok's user and decodes
// the answer into into; it returns the status.
func callJSON(t testing.TB, method, url, tok, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// startFollowCluster starts three nodes on the shared Redis (own prefix)
// and one MySQL database, accepting the same tokens.
func startFollowCluster(t testing.TB) []*testNode {
	t.Helper()
	url, prefix, _ := sharedRedis(t)
	dsn := mysqltest.DSN(t, "follow")
	var nodes []*testNode
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, map[string]string{
			"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix, "QUOTEHUB_NODE_ID": id,
			"QUOTEHUB_MYSQL_DSN": dsn, "QUOTEHUB_JWT_SECRET": followSecret,
		}))
	}
	return nodes
}

// portfolioFrame is the part of a portfolio frame the tests read.
type portfolioFrame struct {
	Type      string             `json:"type"`
	Positions []map[string]any   `json:"positions"`
	Total     map[string]any     `json:"total"`
	FX        map[string]float64 `json:"fx"`
	AsOf      int64              `json:"as_of"`
}

// TestFollowAcrossNodes: a session on node c follows alice's watchlist and
// portfolio; edits made over REST on node a reach it (the user bus over
// Redis, the lists in MySQL), and its portfolio, held in dollars and won,
// is valued in won at the live USD/KRW quote.
func TestFollowAcrossNodes(t *testing.T) {
	nodes := startFollowCluster(t)
	a, c := nodes[0], nodes[2]
	tok := followToken(t, "alice")
	var w struct{ ID string }
	if st := callJSON(t, "POST", a.url("/v1/me/watchlists"), tok, `{"name":"Coins","symbols":["KRW-BTC"]}`, &w); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	if st := callJSON(t, "PUT", a.url("/v1/me/portfolio"), tok,
		`{"base_currency":"KRW","holdings":[{"symbol":"AAPL","quantity":2,"avg_cost":150},{"symbol":"KRW-ETH","quantity":1,"avg_cost":1000000}]}`, nil); st != http.StatusOK {
		t.Fatalf("portfolio: %d", st)
	}

	ws := dialWS(t, c, "?token="+url.QueryEscape(tok), nil)
	ws.next("welcome")
	ws.send(`{"op":"follow","id":1,"lists":["watchlist:` + w.ID + `","portfolio"]}`)
	f := ws.next("subscribed")
	want := []string{"KRW-BTC", "AAPL", "KRW-ETH", "FX:USDKRW"}
	if !slices.Equal(f.Symbols, want) {
		t.Fatalf("follow reply symbols %v, want %v", f.Symbols, want)
	}
	// Valuations come until every position is priced (the sim quotes each
	// symbol once it is active).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no fully priced valuation within 10 s")
		}
		v := ws.next("portfolio")
		var p portfolioFrame
		if err := json.Unmarshal(v.raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.FX["USD"] > 0 && p.Positions[0]["priced"] == true && p.Positions[1]["priced"] == true {
			total := p.Positions[0]["value"].(float64)*p.FX["USD"] + p.Positions[1]["value"].(float64)
			if got := p.Total["value"].(float64); got < total*0.999999 || got > total*1.000001 || p.Total["currency"] != "KRW" {
				t.Fatalf("total %v, want %v KRW", p.Total, total)
			}
			break
		}
	}

	// An edit on node a reaches the session on node c.
	if st := callJSON(t, "PATCH", a.url("/v1/me/watchlists/"+w.ID), tok, `{"add":["KRW-XRP"],"remove":["KRW-BTC"]}`, nil); st != http.StatusOK {
		t.Fatalf("patch: %d", st)
	}
	var added, dropped bool
	for !added || !dropped {
		f := ws.must(5 * time.Second)
		switch {
		case f.Type == "subscribed":
			added = slices.Equal(f.Symbols, []string{"KRW-XRP"})
		case f.Type == "unsubscribed":
			dropped = slices.Equal(f.Symbols, []string{"KRW-BTC"})
		case f.Type != "quotes" && f.Type != "portfolio":
			t.Fatalf("unexpected %s", f.raw)
		}
	}
	// A trade on node b adds a holding on c.
	if st := callJSON(t, "POST", nodes[1].url("/v1/me/portfolio/trades"), tok, `{"symbol":"005930.KS","side":"buy","quantity":3,"price":70000}`, nil); st != http.StatusCreated {
		t.Fatalf("trade: %d", st)
	}
	for {
		f := ws.must(5 * time.Second)
		if f.Type == "subscribed" {
			if !slices.Equal(f.Symbols, []string{"005930.KS"}) {
				t.Fatalf("after the trade: %s", f.raw)
			}
			break
		}
	}
}

// BenchmarkFollowEditAcrossNodes measures how long a watchlist edit made
// over REST on node a takes to reach, as a subscribed frame, a session
// following the list on node c (three nodes on Redis, lists in MySQL).
// Each iteration adds one symbol then removes it; the latency of both is
// recorded, and p50/p99 reported.
func BenchmarkFollowEditAcrossNodes(b *testing.B) {
	nodes := startFollowCluster(b)
	a, c := nodes[0], nodes[2]
	tok := followToken(b, "alice")
	var w struct{ ID string }
	if st := callJSON(b, "POST", a.url("/v1/me/watchlists"), tok, `{"name":"Bench","symbols":["KRW-BTC"]}`, &w); st != http.StatusCreated {
		b.Fatalf("create: %d", st)
	}
	ws := dialWS(b, c, "?token="+url.QueryEscape(tok), nil)
	ws.next("welcome")
	ws.send(`{"op":"follow","id":1,"lists":["watchlist:` + w.ID + `"]}`)
	ws.next("subscribed")
	var lat []float64
	wait := func(typ string) {
		for {
			f := ws.must(5 * time.Second)
			if f.Type == typ {
				return
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, edit := range []struct{ body, frame string }{{`{"add":["KRW-ETH"]}`, "subscribed"}, {`{"remove":["KRW-ETH"]}`, "unsubscribed"}} {
			start := time.Now()
			if st := callJSON(b, "PATCH", a.url("/v1/me/watchlists/"+w.ID), tok, edit.body, nil); st != http.StatusOK {
				b.Fatalf("patch: %d", st)
			}
			wait(edit.frame)
			lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		}
	}
	b.StopTimer()
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(slices.Max(lat), "max-ms")
}

// TestPortfolioCacheAcrossNodes: node b keeps alice's portfolio in memory
// for valued reads; a write on node a reaches it as a user-bus event,
// which drops the entry before the sessions of b re-read the portfolio:
// the session following it sees the new holding, and a read on b right
// after gives the new version, never the cached one.
func TestPortfolioCacheAcrossNodes(t *testing.T) {
	nodes := startFollowCluster(t)
	a, b := nodes[0], nodes[1]
	tok := followToken(t, "alice")
	if st := callJSON(t, "PUT", a.url("/v1/me/portfolio"), tok, `{"holdings":[{"symbol":"KRW-BTC","quantity":1,"avg_cost":1}]}`, nil); st != http.StatusOK {
		t.Fatalf("portfolio: %d", st)
	}
	ws := dialWS(t, b, "?token="+url.QueryEscape(tok), nil)
	ws.next("welcome")
	ws.send(`{"op":"follow","id":1,"lists":["portfolio"]}`)
	ws.next("subscribed")
	var got struct{ Version int64 }
	// b's bus subscribes: from then on its reads are served from memory.
	poll.Until(t, 10*time.Second, "node b to serve alice's portfolio from memory", func() bool {
		callJSON(t, "GET", b.url("/v1/me/portfolio"), tok, "", &got)
		return b.folios.Stats().Hits > 0
	})
	if got.Version != 1 {
		t.Fatalf("version %d, want 1", got.Version)
	}
	for v := int64(2); v <= 4; v++ {
		sym := []string{"", "", "KRW-ETH", "KRW-XRP", "005930.KS"}[v]
		body := `{"holdings":[{"symbol":"KRW-BTC","quantity":1,"avg_cost":1},{"symbol":"` + sym + `","quantity":1,"avg_cost":1}]}`
		if st := callJSON(t, "PUT", a.url("/v1/me/portfolio"), tok, body, nil); st != http.StatusOK {
			t.Fatalf("portfolio: %d", st)
		}
		for deadline := time.Now().Add(5 * time.Second); ; {
			if time.Now().After(deadline) {
				t.Fatalf("the session on node b did not follow version %d within 5 s", v)
			}
			f := ws.must(5 * time.Second)
			if f.Type == "subscribed" {
				if !slices.Equal(f.Symbols, []string{sym}) {
					t.Fatalf("after version %d: %s", v, f.raw)
				}
				break
			}
		}
		if callJSON(t, "GET", b.url("/v1/me/portfolio"), tok, "", &got); got.Version != v {
			t.Fatalf("node b serves version %d after the event of version %d", got.Version, v)
		}
	}
}
