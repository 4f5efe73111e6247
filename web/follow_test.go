package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub"
	"quotehub/auth"
	"quotehub/hub"
	"quotehub/store/memory"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/valuation"
	"quotehub/web"
)

// followNode is a node whose sessions can follow lists: a real embedded
// user store, real HS256 tokens, the memory user bus re-reading followed
// lists as cmd/quotehub wires it, and a symbol limit of maxSymbols.
type followNode struct {
	*node
	users  quotehub.UserStore
	events *eventLog
}

// eventLog records what the user bus carried.
type eventLog struct {
	mu  sync.Mutex
	evs []quotehub.UserEvent
}

func (l *eventLog) add(ev quotehub.UserEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventLog) all() []quotehub.UserEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func startFollowNode(t testing.TB, maxSymbols int) *followNode {
	t.Helper()
	return startFollowNodeOn(t, maxSymbols, nil)
}

// startFollowNodeOn is startFollowNode with the user store wrapped by wrap.
func startFollowNodeOn(t testing.TB, maxSymbols int, wrap func(quotehub.UserStore) quotehub.UserStore) *followNode {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var st quotehub.UserStore = db
	if wrap != nil {
		st = wrap(db)
	}
	f := &followNode{users: st, events: &eventLog{}}
	var h *hub.Hub
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the node's shutdown: the last re-reads end
	bus := memory.NewUserBus()
	bus.HandleUser(func(ev quotehub.UserEvent) {
		f.events.add(ev)
		if c, ok := st.(interface{ Invalidate(string) }); ok && ev.Kind == quotehub.UserListsChanged {
			c.Invalidate(ev.User) // as the node's bus handler does, before the re-reads
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Refollow(context.Background(), ev.User, web.ListOfEvent(ev))
		}()
	})
	f.node = startNodeWith(t, func(o *hub.Options) {
		o.MaxSymbols = maxSymbols
		o.Lists = &web.Lists{Users: st, Catalog: o.Catalog}
	}, func(o *web.Options) {
		o.Users, o.UserBus = st, bus
		o.UserLimits = quotehub.UserLimits{MaxSymbols: maxSymbols}
		v, err := auth.New(auth.Options{Secret: secret}) // the real verifier, as jwtNode's
		if err != nil {
			t.Fatal(err)
		}
		o.Verifier = v
	})
	h = f.hub
	// Every symbol the tests use has a fresh quote in the cache, so a
	// session's snapshots, and a portfolio's valuation, are known.
	for i, s := range []string{"KRW-BTC", "KRW-ETH", "KRW-XRP", "005930.KS", "SYN-000", "SYN-001"} {
		if _, err := f.cache.PutMany(context.Background(), []quotehub.Quote{quote(s, float64(100*(i+1)), 1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// frames reads a WebSocket's frames as JSON objects.
type frames struct {
	c *websocket.Conn
}

func (f frames) next(t *testing.T) map[string]any {
	t.Helper()
	m, err := readFrame(t, f.c)
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return m
}

// until reads frames until one of type typ (quotes frames are skipped).
func (f frames) until(t *testing.T, typ string) map[string]any {
	t.Helper()
	for {
		m := f.next(t)
		if m["type"] == typ {
			return m
		}
		if m["type"] != "quotes" && m["type"] != "portfolio" {
			t.Fatalf("waiting for %s, got %v", typ, m)
		}
	}
}

func (f frames) send(t *testing.T, msg string) {
	t.Helper()
	if err := f.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func openFollower(t *testing.T, n *followNode, user string) frames {
	t.Helper()
	query := ""
	if user != "" {
		query = "?token=" + token(t, user, time.Hour)
	}
	c, _, err := dialWS(t, n.node, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := frames{c}
	if m := f.next(t); m["type"] != "welcome" {
		t.Fatalf("first frame %v", m)
	}
	return f
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func createList(t *testing.T, n *followNode, user string, syms ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("l%d", time.Now().UnixNano()), "symbols": syms})
	resp, body := n.call(t, token(t, user, time.Hour), "POST", "/v1/me/watchlists", string(b))
	var w quotehub.Watchlist
	wantJSON(t, resp, body, http.StatusCreated, &w)
	return w.ID
}

// TestFollowWatchlist: a follow subscribes to the list's symbols; edits
// over REST reach the live session as subscribed/unsubscribed frames
// naming the list; a symbol subscribed by name stays when the list drops
// it; a deleted list is no longer followed.
func TestFollowWatchlist(t *testing.T) {
	n := startFollowNode(t, 4)
	id := createList(t, n, "alice", "KRW-BTC", "KRW-ETH")
	ws := openFollower(t, n, "alice")

	ws.send(t, `{"op":"subscribe","id":1,"symbols":["KRW-ETH"]}`)
	ws.until(t, "subscribed")
	ws.send(t, `{"op":"follow","id":"f","lists":["watchlist:`+id+`"]}`)
	m := ws.until(t, "subscribed")
	if m["id"] != "f" || !slices.Equal(strs(m["lists"]), []string{"watchlist:" + id}) || !slices.Equal(strs(m["symbols"]), []string{"KRW-BTC", "KRW-ETH"}) {
		t.Fatalf("follow reply %v", m)
	}
	if q := ws.until(t, "quotes"); !strings.Contains(fmt.Sprint(q), "KRW-BTC") {
		t.Errorf("no snapshot of KRW-BTC: %v", q)
	}

	tok := token(t, "alice", time.Hour)
	resp, body := n.call(t, tok, "PATCH", "/v1/me/watchlists/"+id, `{"add":["KRW-XRP"],"remove":["KRW-ETH","KRW-BTC"]}`)
	wantJSON(t, resp, body, http.StatusOK, nil)
	m = ws.until(t, "subscribed")
	if m["list"] != "watchlist:"+id || !slices.Equal(strs(m["symbols"]), []string{"KRW-XRP"}) {
		t.Fatalf("after the edit: %v", m)
	}
	m = ws.until(t, "unsubscribed")
	// KRW-ETH was subscribed by name: it stays.
	if m["list"] != "watchlist:"+id || !slices.Equal(strs(m["symbols"]), []string{"KRW-BTC"}) {
		t.Fatalf("after the edit: %v", m)
	}
	ev := n.events.all()
	if last := ev[len(ev)-1]; last.User != "alice" || last.Kind != quotehub.UserListsChanged || string(last.Data) != `{"list":"watchlist:`+id+`"}` {
		t.Errorf("user event %+v %s", last, last.Data)
	}

	resp, body = n.call(t, tok, "DELETE", "/v1/me/watchlists/"+id, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	m = ws.until(t, "unsubscribed")
	if m["list"] != "watchlist:"+id || !slices.Equal(strs(m["symbols"]), []string{"KRW-XRP"}) {
		t.Fatalf("after the delete: %v", m)
	}
	ws.send(t, `{"op":"ping","id":9}`)
	ws.until(t, "pong")
	if got := n.hub.Subscribers("KRW-ETH"); got != 1 {
		t.Errorf("KRW-ETH (subscribed by name) has %d subscribers, want 1", got)
	}
	if got := n.hub.Subscribers("KRW-XRP"); got != 0 {
		t.Errorf("KRW-XRP (the deleted list's) has %d subscribers, want 0", got)
	}
}

// TestUnfollow drops the symbols only the list held, and a later edit of
// that list changes nothing for the session.
func TestUnfollow(t *testing.T) {
	n := startFollowNode(t, 4)
	id := createList(t, n, "alice", "KRW-BTC", "KRW-ETH")
	ws := openFollower(t, n, "alice")
	ws.send(t, `{"op":"follow","id":1,"lists":["watchlist:`+id+`","watchlist:`+id+`"]}`)
	ws.until(t, "subscribed")
	ws.send(t, `{"op":"subscribe","id":2,"symbols":["KRW-BTC"]}`)
	ws.until(t, "subscribed")
	ws.send(t, `{"op":"unfollow","id":3,"lists":["watchlist:`+id+`","watchlist:nope"]}`)
	m := ws.until(t, "unsubscribed")
	if m["id"] != float64(3) || !slices.Equal(strs(m["symbols"]), []string{"KRW-ETH"}) {
		t.Fatalf("unfollow reply %v", m)
	}
	resp, body := n.call(t, token(t, "alice", time.Hour), "PATCH", "/v1/me/watchlists/"+id, `{"add":["KRW-XRP"]}`)
	wantJSON(t, resp, body, http.StatusOK, nil)
	ws.send(t, `{"op":"ping","id":4}`)
	ws.until(t, "pong")
	if got := n.hub.Subscribers("KRW-XRP"); got != 0 {
		t.Errorf("an unfollowed list's edit subscribed the session: %d", got)
	}
}

// TestFollowRefused: every refusal is an error frame in the one shape,
// and changes nothing.
func TestFollowRefused(t *testing.T) {
	n := startFollowNode(t, 4)
	bobs := createList(t, n, "bob", "KRW-BTC")
	big := createList(t, n, "alice", "KRW-BTC", "KRW-ETH", "KRW-XRP")
	for _, tc := range []struct {
		name, user, before, req, code string
	}{
		{"Anonymous", "", "", `{"op":"follow","id":1,"lists":["portfolio"]}`, quotehub.EUnauthorized},
		{"UnknownList", "alice", "", `{"op":"follow","id":1,"lists":["watchlist:nope"]}`, quotehub.ENotFound},
		{"AnotherUsersList", "alice", "", `{"op":"follow","id":1,"lists":["watchlist:` + bobs + `"]}`, quotehub.ENotFound},
		{"BadName", "alice", "", `{"op":"follow","id":1,"lists":["everything"]}`, quotehub.EBadRequest},
		{"NoLists", "alice", "", `{"op":"follow","id":1,"lists":[]}`, quotehub.EBadRequest},
		{"ListsNotStrings", "alice", "", `{"op":"follow","id":1,"lists":[1]}`, quotehub.EBadRequest},
		{"MissingLists", "alice", "", `{"op":"unfollow","id":1}`, quotehub.EBadRequest},
		{"TooManySymbols", "alice", `{"op":"subscribe","id":0,"symbols":["SYN-000","SYN-001"]}`,
			`{"op":"follow","id":1,"lists":["watchlist:` + big + `"]}`, quotehub.ETooManySymbols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := openFollower(t, n, tc.user)
			held := 0
			if tc.before != "" {
				ws.send(t, tc.before)
				held = len(strs(ws.until(t, "subscribed")["symbols"]))
			}
			ws.send(t, tc.req)
			m := ws.until(t, "error")
			if m["code"] != tc.code || m["id"] != float64(1) || m["message"] == "" {
				t.Fatalf("error frame %v, want code %s", m, tc.code)
			}
			ws.send(t, `{"op":"ping","id":2}`)
			ws.until(t, "pong")
			total := 0
			for _, s := range []string{"KRW-BTC", "KRW-ETH", "KRW-XRP", "SYN-000", "SYN-001"} {
				total += n.hub.Subscribers(s)
			}
			if total != held {
				t.Errorf("%d subscriptions after a refused follow, want %d", total, held)
			}
		})
	}
}

// TestFollowPortfolio: a session following the portfolio gets a valuation
// at once, then one after each batch of quotes that changed a holding,
// with the figures valuation.Value gives on the same quotes; an edit of
// the holdings re-values and re-subscribes. GET /v1/me/portfolio gives
// the same valuation from the cache, with no upstream call.
func TestFollowPortfolio(t *testing.T) {
	n := startFollowNode(t, 4)
	tok := token(t, "alice", time.Hour)
	resp, body := n.call(t, tok, "PUT", "/v1/me/portfolio",
		`{"base_currency":"KRW","holdings":[{"symbol":"KRW-BTC","quantity":2,"avg_cost":50},{"symbol":"KRW-ETH","quantity":3,"avg_cost":250}]}`)
	wantJSON(t, resp, body, http.StatusOK, nil)
	hs := []valuation.Holding{{Symbol: "KRW-BTC", Quantity: 2, AvgCost: 50, Currency: "KRW"}, {Symbol: "KRW-ETH", Quantity: 3, AvgCost: 250, Currency: "KRW"}}
	quotes := map[string]quotehub.Quote{"KRW-BTC": quote("KRW-BTC", 100, 1, 0), "KRW-ETH": quote("KRW-ETH", 200, 1, 0)}
	want := func() valuation.Valuation {
		return valuation.Value(hs, "KRW", func(s string) (quotehub.Quote, bool) { q, ok := quotes[s]; return q, ok })
	}
	checkFrame := func(t *testing.T, m map[string]any) {
		t.Helper()
		var got valuation.Valuation
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		w := want()
		if !equalValuations(got, w) {
			t.Fatalf("valuation\n got %+v\nwant %+v", got, w)
		}
	}

	ws := openFollower(t, n, "alice")
	ws.send(t, `{"op":"follow","id":1,"lists":["portfolio"]}`)
	if m := ws.until(t, "subscribed"); !slices.Equal(strs(m["symbols"]), []string{"KRW-BTC", "KRW-ETH"}) {
		t.Fatalf("follow reply %v", m)
	}
	checkFrame(t, ws.until(t, "portfolio"))

	// One batch changing both holdings: one valuation.
	quotes["KRW-BTC"], quotes["KRW-ETH"] = quote("KRW-BTC", 120, 2, 0), quote("KRW-ETH", 190, 2, 0)
	batch := []quotehub.Quote{quotes["KRW-BTC"], quotes["KRW-ETH"]}
	if _, err := n.cache.PutMany(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	n.hub.Publish(batch)
	m := ws.until(t, "portfolio")
	checkFrame(t, m)
	if m["type"] != "portfolio" || m["base_currency"] != "KRW" {
		t.Errorf("frame head %v", m)
	}
	ws.send(t, `{"op":"ping","id":2}`)
	for m := ws.next(t); m["type"] != "pong"; m = ws.next(t) {
		if m["type"] != "quotes" {
			t.Fatalf("a batch gave more than one valuation: %v", m)
		}
	}

	calls := n.prov.calls.Load()
	resp, body = n.call(t, tok, "GET", "/v1/me/portfolio", "")
	var read struct {
		quotehub.Portfolio
		Valuation valuation.Valuation `json:"valuation"`
	}
	wantJSON(t, resp, body, http.StatusOK, &read)
	if !equalValuations(read.Valuation, want()) || len(read.Holdings) != 2 || resp.Header.Get("ETag") != `"1"` {
		t.Errorf("GET /v1/me/portfolio: %s (ETag %s)", body, resp.Header.Get("ETag"))
	}
	if got := n.prov.calls.Load(); got != calls {
		t.Errorf("a valued read called the upstream %d times", got-calls)
	}

	// A trade adds a holding: the session subscribes to it and re-values.
	resp, body = n.call(t, tok, "POST", "/v1/me/portfolio/trades", `{"symbol":"KRW-XRP","side":"buy","quantity":1,"price":250}`)
	wantJSON(t, resp, body, http.StatusCreated, nil)
	if m := ws.until(t, "subscribed"); m["list"] != "portfolio" || !slices.Equal(strs(m["symbols"]), []string{"KRW-XRP"}) {
		t.Fatalf("after the trade: %v", m)
	}
	hs = append(hs, valuation.Holding{Symbol: "KRW-XRP", Quantity: 1, AvgCost: 250, Currency: "KRW"})
	quotes["KRW-XRP"] = quote("KRW-XRP", 300, 1, 0)
	checkFrame(t, ws.until(t, "portfolio"))
}

// equalValuations compares what the wire carries (JSON drops nothing of
// interest; floats are compared exactly: both sides compute the same).
func equalValuations(a, b valuation.Valuation) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestSSEFollow: ?follow= on SSE needs a token, refuses another user's
// list before the stream opens, and streams subscribed and portfolio
// events besides quotes.
func TestSSEFollow(t *testing.T) {
	n := startFollowNode(t, 4)
	tok := token(t, "alice", time.Hour)
	bobs := createList(t, n, "bob", "KRW-BTC")
	resp, body := n.call(t, tok, "PUT", "/v1/me/portfolio", `{"holdings":[{"symbol":"KRW-BTC","quantity":1,"avg_cost":90}]}`)
	wantJSON(t, resp, body, http.StatusOK, nil)

	t.Run("Anonymous", func(t *testing.T) {
		resp, body := n.get(t, "/v1/sse?follow=portfolio")
		wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	})
	t.Run("AnotherUsersList", func(t *testing.T) {
		resp, body := n.get(t, "/v1/sse?follow=watchlist:"+bobs+"&token="+tok)
		wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	})
	t.Run("Portfolio", func(t *testing.T) {
		s := openSSE(t, n.node, "?follow=portfolio&token="+tok)
		if s.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", s.resp.StatusCode)
		}
		s.expect(t, "retry", "retry: 3000\n\n")
		s.expect(t, "subscribed", `event: subscribed`+"\n"+`data: {"type":"subscribed","lists":["portfolio"],"symbols":["KRW-BTC"],"rejected":[]}`+"\n\n")
		v := valuation.Value([]valuation.Holding{{Symbol: "KRW-BTC", Quantity: 1, AvgCost: 90, Currency: "KRW"}}, "KRW",
			func(string) (quotehub.Quote, bool) { return quote("KRW-BTC", 100, 1, 0), true })
		frame, _ := json.Marshal(struct {
			Type         string `json:"type"`
			BaseCurrency string `json:"base_currency"`
			Version      int64  `json:"version"`
			valuation.Valuation
		}{"portfolio", "KRW", 1, v})
		s.expect(t, "valuation", "event: portfolio\ndata: "+string(frame)+"\n\n")
		q := quote("KRW-BTC", 100, 1, 0)
		s.expect(t, "snapshot", quoteEvent(1, q))
	})
}
