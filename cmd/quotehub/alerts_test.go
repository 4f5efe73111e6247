package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/store/mysql/mysqltest"
)

const alertSecret = "alerts-test-secret-of-32-bytes!!"

// alertSym is the symbol the alert tests move: its sim walks in small
// steps, so a seeded price stays within a fraction of a percent.
const alertSym = "KRW-BTC"

func hsToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte(alertSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends a JSON request with a bearer token and decodes the answer
// into out (when not nil); it returns the status.
func call(t *testing.T, method, url, tok string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d, body: %v", method, url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// alertMsg is an alert as the WebSocket frame and the SSE event carry it.
type alertMsg struct {
	Type      string  `json:"type"`
	ID        int64   `json:"id"`
	RuleID    int64   `json:"rule_id"`
	Symbol    string  `json:"symbol"`
	Kind      string  `json:"kind"`
	Threshold float64 `json:"threshold"`
	Direction string  `json:"direction"`
	Price     float64 `json:"price"`
	At        int64   `json:"at"`
}

// nextAlert reads ws until an alert frame.
func nextAlert(t *testing.T, ws *wsClient) alertMsg {
	t.Helper()
	f := ws.next("alert")
	var a alertMsg
	if err := json.Unmarshal(f.raw, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// nextSSEAlert reads s until an alert event and checks that its SSE id
// is the alert's.
func nextSSEAlert(t *testing.T, s *sseStream) (alertMsg, string) {
	t.Helper()
	for {
		ev, ok := s.next(10 * time.Second)
		if !ok {
			t.Fatal("the events stream ended")
		}
		switch ev.event {
		case "", "keepalive":
			continue
		case "alert":
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
		var a alertMsg
		if err := json.Unmarshal([]byte(ev.data), &a); err != nil {
			t.Fatal(err)
		}
		if a.ID > 0 && ev.id != strconv.FormatInt(a.ID, 10) || a.ID == 0 && ev.id != "" {
			t.Fatalf("SSE id %q for alert %d", ev.id, a.ID)
		}
		return a, ev.id
	}
}

// price reads the cached price of sym.
func price(t *testing.T, n *testNode, sym string) float64 {
	t.Helper()
	var q struct {
		Price float64 `json:"price"`
	}
	if st := call(t, http.MethodGet, n.url("/v1/quotes/"+sym), "", nil, &q); st != 200 {
		t.Fatalf("GET quote %s: %d", sym, st)
	}
	return q.Price
}

// moveTo makes the sims of nodes continue sym's walk from p and waits
// until node n serves a price within 0.2 % of it: the owner has evaluated
// a price there.
func moveTo(t *testing.T, n *testNode, p float64, nodes ...*testNode) {
	t.Helper()
	if len(nodes) == 0 {
		nodes = []*testNode{n}
	}
	var got float64
	poll.Until(t, 10*time.Second, fmt.Sprintf("the price near %v", p), func() bool {
		got = price(t, n, alertSym)
		if got > p*0.998 && got < p*1.002 {
			return true
		}
		// Seeded until it shows: a fetch already under way when it was
		// seeded answers from the walk before.
		for _, x := range nodes {
			x.sim().Seed(quotehub.Quote{Symbol: alertSym, Price: p, Source: "sim", TradeTime: time.Now().UnixMilli()})
		}
		return false
	})
}

type ruleBody struct {
	ID        int64   `json:"id"`
	Version   int64   `json:"version"`
	Threshold float64 `json:"threshold"`
}

// createRule creates a rule through n and waits until every node holds
// it.
func createRule(t *testing.T, n *testNode, tok string, body map[string]any, nodes ...*testNode) ruleBody {
	t.Helper()
	var r ruleBody
	if st := call(t, http.MethodPost, n.url("/v1/me/alerts"), tok, body, &r); st != http.StatusCreated {
		t.Fatalf("POST /v1/me/alerts: %d", st)
	}
	waitRule(t, r.ID, r.Version, append(nodes, n)...)
	return r
}

// waitRule waits until every node has the rule's version loaded (version
// 0: until none has the rule).
func waitRule(t *testing.T, id, version int64, nodes ...*testNode) {
	t.Helper()
	poll.Until(t, 10*time.Second, fmt.Sprintf("rule %d v%d on every node", id, version), func() bool {
		for _, x := range nodes {
			x.alerts.mu.Lock()
			l, ok := x.alerts.loaded[id]
			x.alerts.mu.Unlock()
			if version == 0 && ok || version > 0 && (!ok || l.version != version) {
				return false
			}
		}
		return true
	})
}

// TestAlertsEndToEnd: a rule set over REST fires once when the price
// goes through it and reaches the user's WebSocket and /v1/me/events
// stream with the same id; a price hovering at the line does not fire
// again until it went back beyond the re-arm band; a stream reconnecting
// with Last-Event-ID gets what it missed, then live alerts, with no gap
// and no repeat; the fired log is readable over REST.
func TestAlertsEndToEnd(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_JWT_SECRET": alertSecret})
	alice := hsToken(t, "alice")
	p0 := price(t, n, alertSym)

	ws := dialWS(t, n, "?token="+alice, nil)
	ws.next("welcome")
	events := openStream(t, n, "/v1/me/events?token="+alice, nil)
	if events.resp.StatusCode != 200 || events.resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("/v1/me/events: %d %s", events.resp.StatusCode, events.resp.Header.Get("Content-Type"))
	}
	// Another user's sessions get nothing (checked at the end).
	bob := dialWS(t, n, "?token="+hsToken(t, "bob"), nil)
	bob.next("welcome")

	T := p0 * 1.2
	r := createRule(t, n, alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": T})
	fire := func(want int64) {
		t.Helper()
		moveTo(t, n, T*1.05)
		a := nextAlert(t, ws)
		if a.ID != want || a.RuleID != r.ID || a.Symbol != alertSym || a.Kind != "above" || a.Threshold != T ||
			a.Direction != "up" || a.Price < T || a.At == 0 {
			t.Fatalf("alert frame %+v, want id %d of rule %d", a, want, r.ID)
		}
		if s, _ := nextSSEAlert(t, events); s.ID != want || s.RuleID != r.ID || s.Price != a.Price {
			t.Fatalf("alert event %+v, want the frame's %+v", s, a)
		}
	}
	fire(1)

	// Hovering at the line, inside the 1 % band: nothing fires. Then the
	// price falls beyond the band (re-armed) and rises through again: the
	// next alert either session gets is number 2, so none came between.
	for range 2 {
		moveTo(t, n, T*0.997)
		moveTo(t, n, T*1.003)
	}
	moveTo(t, n, T*0.97)
	fire(2)

	// A widget that saw alert 1 reconnects: it gets 2 from the log, then
	// 3 live, and nothing twice.
	again := openStream(t, n, "/v1/me/events", http.Header{"Authorization": {"Bearer " + alice}, "Last-Event-ID": {"1"}})
	if a, _ := nextSSEAlert(t, again); a.ID != 2 {
		t.Fatalf("replay after 1 starts with %+v, want alert 2", a)
	}
	moveTo(t, n, T*0.97)
	fire(3)
	if a, _ := nextSSEAlert(t, again); a.ID != 3 {
		t.Fatalf("after the replay: %+v, want live alert 3", a)
	}
	// ?last_event_id= does the same; 0 replays the whole log.
	all := openStream(t, n, "/v1/me/events?last_event_id=0&token="+alice, nil)
	for want := int64(1); want <= 3; want++ {
		if a, _ := nextSSEAlert(t, all); a.ID != want {
			t.Fatalf("replay from 0: %+v, want alert %d", a, want)
		}
	}

	var fired struct {
		Alerts []quotehub.FiredAlert `json:"alerts"`
	}
	if st := call(t, http.MethodGet, n.url("/v1/me/alerts/fired?after=1"), alice, nil, &fired); st != 200 ||
		len(fired.Alerts) != 2 || fired.Alerts[0].ID != 2 || fired.Alerts[1].ID != 3 || fired.Alerts[1].Direction != "up" {
		t.Fatalf("GET fired?after=1: %d %+v", st, fired.Alerts)
	}

	// Editing the rule reloads it (re-armed, at its new threshold);
	// deleting it drops it, and the symbol's alert interest with it.
	var upd ruleBody
	if st := call(t, http.MethodPatch, n.url(fmt.Sprintf("/v1/me/alerts/%d", r.ID)), alice, map[string]any{"threshold": T * 2}, &upd); st != 200 {
		t.Fatalf("PATCH: %d", st)
	}
	waitRule(t, r.ID, upd.Version, n)
	if st := call(t, http.MethodDelete, n.url(fmt.Sprintf("/v1/me/alerts/%d", r.ID)), alice, nil, nil); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	waitRule(t, r.ID, 0, n)
	if syms := n.alerts.Symbols(); len(syms) != 0 {
		t.Errorf("symbols with rules after the delete: %v", syms)
	}
	bob.send(`{"op":"ping","id":1}`)
	if f := bob.next("pong"); f.Type != "pong" {
		t.Fatalf("bob: %+v", f)
	}
}

// TestAlertsBadInput: every refusal in the one error shape.
func TestAlertsBadInput(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_JWT_SECRET": alertSecret})
	alice, bob := hsToken(t, "alice"), hsToken(t, "bob")
	r := createRule(t, n, alice, map[string]any{"symbol": alertSym, "kind": "cross", "threshold": 100})
	cases := []struct {
		name, method, path, tok string
		body                    any
		hdr                     http.Header
		status                  int
		code                    string
	}{
		{"AnotherUsersRule", http.MethodPatch, fmt.Sprintf("/v1/me/alerts/%d", r.ID), bob, map[string]any{"threshold": 1}, nil, 404, "not_found"},
		{"AnotherUsersRuleDelete", http.MethodDelete, fmt.Sprintf("/v1/me/alerts/%d", r.ID), bob, nil, nil, 404, "not_found"},
		{"AnotherUsersRuleRead", http.MethodGet, fmt.Sprintf("/v1/me/alerts/%d", r.ID), bob, nil, nil, 404, "not_found"},
		{"BadKind", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "sideways", "threshold": 1}, nil, 400, "bad_request"},
		{"EngineKindName", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "move", "threshold": 5}, nil, 400, "bad_request"},
		{"NegativePrice", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": -1}, nil, 400, "bad_request"},
		{"ZeroMove", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "move_pct", "threshold": 0}, nil, 400, "bad_request"},
		{"HugeMove", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "move_pct", "threshold": 5000}, nil, 400, "bad_request"},
		{"BadRearm", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": 1, "rearm": 0.9}, nil, 400, "bad_request"},
		{"ThresholdNotANumber", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": "high"}, nil, 400, "bad_request"},
		{"UnknownSymbol", http.MethodPost, "/v1/me/alerts", alice, map[string]any{"symbol": "NOPE-NOPE", "kind": "above", "threshold": 1}, nil, 404, "unknown_symbol"},
		{"FiredBadAfter", http.MethodGet, "/v1/me/alerts/fired?after=-1", alice, nil, nil, 400, "bad_request"},
		{"FiredBadLimit", http.MethodGet, "/v1/me/alerts/fired?limit=x", alice, nil, nil, 400, "bad_request"},
		{"FiredNoToken", http.MethodGet, "/v1/me/alerts/fired", "", nil, nil, 401, "unauthorized"},
		{"EventsNoToken", http.MethodGet, "/v1/me/events", "", nil, nil, 401, "unauthorized"},
		{"EventsBadToken", http.MethodGet, "/v1/me/events?token=nope", "", nil, nil, 401, "unauthorized"},
		{"EventsBadLastEventID", http.MethodGet, "/v1/me/events", alice, nil, http.Header{"Last-Event-ID": {"x"}}, 400, "bad_request"},
		{"EventsNegativeLastEventID", http.MethodGet, "/v1/me/events?last_event_id=-3", alice, nil, nil, 400, "bad_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rd io.Reader
			if c.body != nil {
				b, _ := json.Marshal(c.body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(c.method, n.url(c.path), rd)
			if c.tok != "" {
				req.Header.Set("Authorization", "Bearer "+c.tok)
			}
			for k, v := range c.hdr {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apiError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("%d, body: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Message == "" {
				t.Fatalf("%d %+v, want %d %s", resp.StatusCode, e, c.status, c.code)
			}
		})
	}
	// Nothing was changed by the refusals.
	var rules struct {
		Alerts []ruleBody `json:"alerts"`
	}
	if st := call(t, http.MethodGet, n.url("/v1/me/alerts"), alice, nil, &rules); st != 200 || len(rules.Alerts) != 1 || rules.Alerts[0].Version != 1 {
		t.Fatalf("alice's rules after the refusals: %d %+v", st, rules.Alerts)
	}
}

// TestAlertsMySQLDown: with MySQL cut off, rules already loaded still
// fire and reach the user's sessions, without an id (they could not be
// recorded, so they are never replayed); the failure is counted; rule
// edits answer 503 and leave nothing behind. Once MySQL is back, alerts
// are recorded again.
func TestAlertsMySQLDown(t *testing.T) {
	cfg, err := mysql.ParseDSN(mysqltest.DSN(t, "alertsdown"))
	if err != nil {
		t.Fatal(err)
	}
	px := mysqltest.NewProxy(t, cfg.Addr)
	cfg.Addr = px.Addr()
	cfg.Timeout = 300 * time.Millisecond
	n := startNode(t, map[string]string{
		"QUOTEHUB_JWT_SECRET": alertSecret, "QUOTEHUB_MYSQL_DSN": cfg.FormatDSN(), "QUOTEHUB_STORE_TIMEOUT": "500ms",
	})
	alice := hsToken(t, "alice")
	p0 := price(t, n, alertSym)
	T := p0 * 1.2
	r := createRule(t, n, alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": T})
	ws := dialWS(t, n, "?token="+alice, nil)
	ws.next("welcome")
	events := openStream(t, n, "/v1/me/events?token="+alice, nil)

	px.Down()
	moveTo(t, n, T*1.05)
	if a := nextAlert(t, ws); a.ID != 0 || a.RuleID != r.ID || a.Price < T {
		t.Fatalf("alert while MySQL is down: %+v, want rule %d without an id", a, r.ID)
	}
	if a, id := nextSSEAlert(t, events); a.ID != 0 || id != "" || a.RuleID != r.ID {
		t.Fatalf("alert event while MySQL is down: %+v id %q", a, id)
	}
	if got := n.metric("quotehub_alert_record_failures_total"); got < 1 {
		t.Errorf("record failures counted: %v", got)
	}
	var e apiError
	if st := call(t, http.MethodPost, n.url("/v1/me/alerts"), alice, map[string]any{"symbol": alertSym, "kind": "below", "threshold": 1}, &e); st != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("POST while MySQL is down: %d %+v", st, e)
	}
	if st := call(t, http.MethodPatch, n.url(fmt.Sprintf("/v1/me/alerts/%d", r.ID)), alice, map[string]any{"threshold": 1}, &e); st != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("PATCH while MySQL is down: %d %+v", st, e)
	}

	px.Up()
	poll.Until(t, 10*time.Second, "the store to answer again", func() bool {
		return call(t, http.MethodGet, n.url("/v1/me/alerts"), alice, nil, nil) == 200
	})
	var rules struct {
		Alerts []ruleBody `json:"alerts"`
	}
	if st := call(t, http.MethodGet, n.url("/v1/me/alerts"), alice, nil, &rules); st != 200 || len(rules.Alerts) != 1 ||
		rules.Alerts[0].Version != 1 || rules.Alerts[0].Threshold != T {
		t.Fatalf("rules after the outage: %d %+v (the refused writes must have left nothing)", st, rules.Alerts)
	}
	// Recorded again once the store answers (after the back-off).
	moveTo(t, n, T*0.97)
	poll.Until(t, 15*time.Second, "an alert recorded after the outage", func() bool {
		moveTo(t, n, T*1.05)
		a := nextAlert(t, ws)
		moveTo(t, n, T*0.97)
		return a.ID == 1
	})
}

// startAlertTrio starts three nodes a, b, c on one Redis (a prefix of
// their own) and one MySQL database (name's).
func startAlertTrio(t *testing.T, name string) []*testNode {
	t.Helper()
	url, prefix, _ := sharedRedis(t)
	dsn := mysqltest.DSN(t, name)
	var nodes []*testNode
	for i := range 3 {
		nodes = append(nodes, startNode(t, map[string]string{
			"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix, "QUOTEHUB_MYSQL_DSN": dsn,
			"QUOTEHUB_JWT_SECRET": alertSecret, "QUOTEHUB_NODE_ID": "node-" + string(rune('a'+i)),
		}))
	}
	return nodes
}

// TestAlertsCluster: three nodes on one Redis and one MySQL. A rule set
// through node a reaches every node; its symbol's owner fires it once;
// alice, connected to b and c, gets each alert exactly once on each
// session, with the same id, and the log holds each once.
func TestAlertsCluster(t *testing.T) {
	nodes := startAlertTrio(t, "alertscluster")
	a, b, c := nodes[0], nodes[1], nodes[2]
	poll.Until(t, 15*time.Second, "every node to hold its share of the slots", func() bool {
		for _, n := range nodes {
			if len(n.stores.held()) < 21 {
				return false
			}
		}
		return true
	})
	alice := hsToken(t, "alice")
	wsB := dialWS(t, b, "?token="+alice, nil)
	wsB.next("welcome")
	wsC := dialWS(t, c, "?token="+alice, nil)
	wsC.next("welcome")
	evC := openStream(t, c, "/v1/me/events?token="+alice, nil)

	p0 := price(t, a, alertSym)
	T := p0 * 1.2
	r := createRule(t, a, alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": T}, b, c)
	for want := int64(1); want <= 2; want++ {
		moveTo(t, a, T*1.05, nodes...)
		for _, ws := range []*wsClient{wsB, wsC} {
			if got := nextAlert(t, ws); got.ID != want || got.RuleID != r.ID {
				t.Fatalf("alert %+v, want id %d once", got, want)
			}
		}
		if got, _ := nextSSEAlert(t, evC); got.ID != want {
			t.Fatalf("alert event %+v, want id %d once", got, want)
		}
		moveTo(t, a, T*0.97, nodes...)
	}
	var fired struct {
		Alerts []quotehub.FiredAlert `json:"alerts"`
	}
	if st := call(t, http.MethodGet, c.url("/v1/me/alerts/fired"), alice, nil, &fired); st != 200 || len(fired.Alerts) != 2 {
		t.Fatalf("the log: %d %+v, want two alerts", st, fired.Alerts)
	}
	total := 0.0
	for _, n := range nodes {
		total += n.metric("quotehub_alerts_fired_total")
	}
	if total != 2 {
		t.Errorf("alerts fired across the cluster: %v, want 2", total)
	}

	// An edit on node a takes effect on the owner: the rule moves out of
	// reach and the price crossing the old line fires nothing; the next
	// alert is the one at the new line.
	var upd ruleBody
	if st := call(t, http.MethodPatch, a.url(fmt.Sprintf("/v1/me/alerts/%d", r.ID)), alice, map[string]any{"threshold": T * 1.1}, &upd); st != 200 {
		t.Fatalf("PATCH on a: %d", st)
	}
	waitRule(t, r.ID, upd.Version, nodes...)
	moveTo(t, a, T*1.05, nodes...)
	moveTo(t, a, T*0.97, nodes...)
	moveTo(t, a, T*1.15, nodes...)
	for _, ws := range []*wsClient{wsB, wsC} {
		if got := nextAlert(t, ws); got.ID != 3 || got.Threshold != T*1.1 {
			t.Fatalf("after the edit: %+v, want alert 3 at the new threshold", got)
		}
	}
}

// TestAlertSymbolStaysActive: a symbol nobody watches or reads is
// refreshed once it has a rule, and stays so for many active windows,
// kept in the active set by the heartbeat like a viewer's symbol.
func TestAlertSymbolStaysActive(t *testing.T) {
	n := startNode(t, map[string]string{
		"QUOTEHUB_JWT_SECRET": alertSecret, "QUOTEHUB_ACTIVE_WINDOW": "300ms", "QUOTEHUB_HEARTBEAT": "100ms",
	})
	const sym = "KRW-ETH"
	if c := n.sim().FetchCount(sym); c != 0 {
		t.Fatalf("%s fetched %d times before it had a rule", sym, c)
	}
	start := time.Now()
	createRule(t, n, hsToken(t, "alice"), map[string]any{"symbol": sym, "kind": "above", "threshold": 1e12})
	poll.Until(t, 5*time.Second, "the first fetch of the rule's symbol", func() bool { return n.sim().FetchCount(sym) > 0 })
	poll.Until(t, 5*time.Second, "several active windows to pass", func() bool { return time.Since(start) > 5*300*time.Millisecond })
	c := n.sim().FetchCount(sym)
	poll.Until(t, 5*time.Second, "a fetch after several active windows", func() bool { return n.sim().FetchCount(sym) > c })
}

// TestAlertsApply: loading a user's rules again leaves unchanged ones as
// they are (a rule that fired stays fired), re-arms a changed one, drops
// a deleted or disabled one and leaves other users' rules alone; move_pct
// is the engine's move.
func TestAlertsApply(t *testing.T) {
	a := newAlerts(nil, nil, time.Second, zerolog.Nop(), nil)
	rule := func(id int64, user, kind string, th float64, version int64) quotehub.AlertRule {
		return quotehub.AlertRule{ID: id, UserID: user, Symbol: "S", Kind: kind, Threshold: th, Enabled: true, Version: version}
	}
	at := time.Now()
	fired := func(price, prev float64) []int64 {
		var ids []int64
		for _, f := range a.engine.Evaluate("S", price, prev, at) {
			ids = append(ids, f.Rule.ID)
		}
		slices.Sort(ids)
		return ids
	}
	a.apply("", []quotehub.AlertRule{rule(1, "alice", quotehub.AlertAbove, 10, 1), rule(2, "alice", quotehub.AlertMovePct, 5, 1), rule(3, "bob", quotehub.AlertAbove, 10, 1)})
	if got := fired(11, 10); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("fired %v, want 1 2 3", got)
	}
	// Alice's rules again: 1 unchanged (stays fired), 2 changed (re-armed).
	a.apply("alice", []quotehub.AlertRule{rule(1, "alice", quotehub.AlertAbove, 10, 1), rule(2, "alice", quotehub.AlertMovePct, 5, 2)})
	if got := fired(11, 10); !slices.Equal(got, []int64{2}) {
		t.Fatalf("after reloading alice: fired %v, want only the changed rule 2", got)
	}
	// Rule 1 deleted, rule 2 disabled: bob's rule 3 is untouched.
	off := rule(2, "alice", quotehub.AlertMovePct, 5, 3)
	off.Enabled = false
	a.apply("alice", []quotehub.AlertRule{off})
	if n := a.engine.Len(); n != 1 {
		t.Fatalf("%d rules after alice's delete and disable, want bob's only", n)
	}
	if got := fired(5, 10); len(got) != 0 { // re-arms bob's rule
		t.Fatalf("fired %v", got)
	}
	if got := fired(11, 10); !slices.Equal(got, []int64{3}) {
		t.Fatalf("fired %v, want bob's 3", got)
	}
	// A full load without bob's rule drops it.
	a.apply("", nil)
	if n := a.engine.Len(); n != 0 || len(a.Symbols()) != 0 {
		t.Fatalf("%d rules, symbols %v after an empty full load", n, a.Symbols())
	}
}

// TestAlertsResync: a rule written while the bus lost events is loaded
// at the next resync.
func TestAlertsResync(t *testing.T) {
	n := startNode(t, nil)
	poll.Until(t, 5*time.Second, "the load at start", func() bool {
		n.alerts.mu.Lock()
		defer n.alerts.mu.Unlock()
		return !n.alerts.all
	})
	r, err := n.users.CreateAlertRule(t.Context(), "alice", quotehub.AlertRule{Symbol: alertSym, Kind: quotehub.AlertBelow, Threshold: 1, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	n.stores.userEvts.resync()
	waitRule(t, r.ID, r.Version, n)
}

// TestAlertsClusterTakeover: the node that fired a rule stops; the node
// that takes its symbol over starts from the cached price, where the rule
// holds, and does not fire it again; the rule fires next only after the
// price went back beyond the band and through the line again.
func TestAlertsClusterTakeover(t *testing.T) {
	nodes := startAlertTrio(t, "alertstakeover")
	poll.Until(t, 15*time.Second, "one node to own "+alertSym, func() bool {
		owners := 0
		for _, n := range nodes {
			if n.stores.owns(alertSym) {
				owners++
			}
		}
		return owners == 1
	})
	alice := hsToken(t, "alice")
	sessions := map[*testNode]*wsClient{}
	for _, n := range nodes {
		ws := dialWS(t, n, "?token="+alice, nil)
		ws.next("welcome")
		sessions[n] = ws
	}
	T := price(t, nodes[0], alertSym) * 1.2
	createRule(t, nodes[0], alice, map[string]any{"symbol": alertSym, "kind": "above", "threshold": T}, nodes...)
	moveTo(t, nodes[0], T*1.05, nodes...)
	var owner *testNode
	var rest []*testNode
	for _, n := range nodes {
		if got := nextAlert(t, sessions[n]); got.ID != 1 {
			t.Fatalf("first alert %+v", got)
		}
		if n.metric("quotehub_alerts_fired_total") == 1 {
			owner = n
		} else {
			rest = append(rest, n)
		}
	}
	if owner == nil || len(rest) != 2 {
		t.Fatal("no single node fired the alert")
	}
	owner.stop()
	poll.Until(t, 20*time.Second, "another node to take "+alertSym+" over", func() bool {
		return rest[0].stores.owns(alertSym) || rest[1].stores.owns(alertSym)
	})
	// Still above the line on the new owner: nothing fires.
	moveTo(t, rest[0], T*1.10, rest...)
	moveTo(t, rest[0], T*0.97, rest...)
	moveTo(t, rest[0], T*1.05, rest...)
	for _, n := range rest {
		if got := nextAlert(t, sessions[n]); got.ID != 2 || got.Price > T*1.08 {
			t.Fatalf("after the takeover: %+v, want alert 2 at about %v (not a repeat at %v)", got, T*1.05, T*1.10)
		}
	}
}
