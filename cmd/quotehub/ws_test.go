package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"quotehub/internal/sockopt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub/internal/poll"
)

func TestWebSocket(t *testing.T) {
	t.Run("WelcomeSubscribedSnapshotLive", func(t *testing.T) {
		n := startNode(t, nil)
		c := dialWS(t, n, "", nil)
		w := c.must(5 * time.Second)
		if w.Type != "welcome" || w.Node != "node-test" || len(w.Session) < 16 ||
			w.Limits["max_symbols"] != 200 || w.Limits["max_message_bytes"] != 4096 {
			t.Fatalf("welcome = %s", short(w.raw))
		}
		c.send(`{"op":"subscribe","id":"r1","symbols":["krw-btc","AAPL!","KRW-NOPE"]}`)
		s := c.must(5 * time.Second)
		if s.Type != "subscribed" || string(s.ID) != `"r1"` || fmt.Sprint(s.Symbols) != "[KRW-BTC]" || len(s.Rejected) != 2 ||
			s.Rejected[0]["code"] != "invalid_symbol" || s.Rejected[0]["symbol"] != "AAPL!" ||
			s.Rejected[1]["code"] != "unknown_symbol" || s.Rejected[1]["symbol"] != "KRW-NOPE" {
			t.Fatalf("subscribed = %s", short(s.raw))
		}
		// The symbol was cold: its first quote comes as soon as it is fetched,
		// then live updates with strictly increasing seq (checked by read).
		for got := 0; got < 4; {
			f := c.must(5 * time.Second)
			if f.Type != "quotes" {
				t.Fatalf("unexpected %s", short(f.raw))
			}
			for _, q := range f.Quotes {
				for _, k := range []string{"symbol", "price", "currency", "trade_time", "fetched_at", "seq", "source", "market"} {
					if _, ok := q[k]; !ok {
						t.Errorf("quote lacks %s: %v", k, q)
					}
				}
				if _, ok := q["stale"]; ok {
					t.Errorf("a pushed quote carries stale: %v", q)
				}
				got++
			}
		}
		// Subscribing again re-sends the snapshot right after subscribed.
		c.send(`{"op":"subscribe","symbols":["KRW-BTC"]}`)
		s = c.next("subscribed")
		if s.ID != nil {
			t.Errorf("reply to a request without id has id %s", s.ID)
		}
		f := c.must(5 * time.Second)
		if f.Type != "quotes" || f.Quotes[0]["symbol"] != "KRW-BTC" {
			t.Fatalf("no snapshot after re-subscribe: %s", short(f.raw))
		}
		c.send(`{"op":"unsubscribe","id":2,"symbols":["KRW-BTC","x!"]}`)
		u := c.next("unsubscribed")
		if string(u.ID) != "2" || fmt.Sprint(u.Symbols) != "[KRW-BTC x!]" {
			t.Fatalf("unsubscribed = %s", short(u.raw))
		}
		c.send(`{"op":"ping","id":"p"}`)
		p := c.next("pong")
		if string(p.ID) != `"p"` || p.Time < 1e12 {
			t.Fatalf("pong = %s", short(p.raw))
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
		poll.Until(t, 5*time.Second, "the connection to close server-side", func() bool { return n.hub.Connections() == 0 })
		if got := n.metric("quotehub_subscriptions"); got != 0 {
			t.Errorf("subscriptions gauge = %v after the client left", got)
		}
	})

	t.Run("SymbolsQuerySubscribesAtConnect", func(t *testing.T) {
		n := startNode(t, nil)
		c := dialWS(t, n, "?symbols=KRW-BTC,,krw-eth", nil)
		if f := c.must(5 * time.Second); f.Type != "welcome" {
			t.Fatalf("first frame = %s", short(f.raw))
		}
		s := c.must(5 * time.Second)
		if s.Type != "subscribed" || s.ID != nil || fmt.Sprint(s.Symbols) != "[KRW-BTC KRW-ETH]" || len(s.Rejected) != 0 {
			t.Fatalf("subscribed = %s", short(s.raw))
		}
		seen := map[string]bool{}
		for len(seen) < 2 {
			for _, q := range c.next("quotes").Quotes {
				seen[q["symbol"].(string)] = true
			}
		}
	})

	t.Run("BadInputGetsErrorFrames", func(t *testing.T) {
		n := startNode(t, nil)
		c := dialWS(t, n, "", nil)
		c.next("welcome")
		cases := []struct{ frame, code, id string }{
			{`{"op":"subscribe"`, "bad_request", ""},
			{`[1,2]`, "bad_request", ""},
			{`{"op":"fly","id":"a"}`, "bad_request", `"a"`},
			{`{"id":"b","symbols":["KRW-BTC"]}`, "bad_request", `"b"`},
			{`{"op":"subscribe","id":"c"}`, "bad_request", `"c"`},
			{`{"op":"subscribe","id":"d","symbols":[]}`, "bad_request", `"d"`},
			{`{"op":"unsubscribe","id":"e","symbols":[1]}`, "bad_request", `"e"`},
			{`{"op":"subscribe","id":{"x":1},"symbols":["KRW-BTC"]}`, "bad_request", ""},
		}
		for _, tc := range cases {
			c.send(tc.frame)
			f := c.next("error")
			if f.Code != tc.code || f.Message == "" || string(f.ID) != tc.id {
				t.Errorf("%s → %s", tc.frame, short(f.raw))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.conn.Write(ctx, websocket.MessageBinary, []byte(`{"op":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if f := c.next("error"); f.Code != "bad_request" || !strings.Contains(f.Message, "binary") {
			t.Errorf("binary frame → %s", short(f.raw))
		}
		// An error does not close the connection: it still works.
		c.send(`{"op":"ping","id":"alive"}`)
		c.next("pong")
	})

	t.Run("TooManySymbols", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_MAX_MESSAGE_BYTES": "1048576", "QUOTEHUB_SIM_SYMBOLS": "300"})
		c := dialWS(t, n, "", nil)
		c.next("welcome")
		var many []string
		for i := range 10000 {
			many = append(many, fmt.Sprintf("SYN-%06d", i+1))
		}
		c.send(symbolsFrame("subscribe", "big", many))
		if f := c.next("error"); f.Code != "too_many_symbols" || string(f.ID) != `"big"` {
			t.Fatalf("10,000 symbols → %s", short(f.raw))
		}
		c.send(symbolsFrame("subscribe", "a", many[:150]))
		if s := c.next("subscribed"); len(s.Symbols) != 150 {
			t.Fatalf("150 symbols → %d subscribed", len(s.Symbols))
		}
		c.send(symbolsFrame("subscribe", "b", many[100:200])) // 50 new: 200 held, allowed
		if s := c.next("subscribed"); len(s.Symbols) != 100 {
			t.Fatalf("100 symbols (50 new) → %d", len(s.Symbols))
		}
		c.send(symbolsFrame("subscribe", "c", many[200:201]))
		if f := c.next("error"); f.Code != "too_many_symbols" {
			t.Fatalf("the 201st symbol → %s", short(f.raw))
		}
		if got := n.metric("quotehub_subscriptions"); got != 200 {
			t.Errorf("subscriptions = %v, want 200", got)
		}
	})

	t.Run("OversizeFrameCloses1009", func(t *testing.T) {
		n := startNode(t, nil)
		c := dialWS(t, n, "", nil)
		c.next("welcome")
		var many []string
		for i := range 10000 {
			many = append(many, fmt.Sprintf("SYN-%06d", i+1))
		}
		_ = c.trySend(symbolsFrame("subscribe", "big", many)) // the server may reset before the frame ends
		if code := c.closeStatus(5 * time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("close = %v, want 1009", code)
		}
		poll.Until(t, 5*time.Second, "server cleanup", func() bool { return n.hub.Connections() == 0 })
	})

	t.Run("ElevenErrorsClose1008", func(t *testing.T) {
		n := startNode(t, nil)
		c := dialWS(t, n, "", nil)
		c.next("welcome")
		for range 11 {
			c.send(`garbage`)
		}
		for i := range 11 {
			if f := c.next("error"); f.Code != "bad_request" {
				t.Fatalf("error %d = %s", i, short(f.raw))
			}
		}
		if code := c.closeStatus(5 * time.Second); code != websocket.StatusPolicyViolation {
			t.Fatalf("close = %v, want 1008", code)
		}
	})

	t.Run("OriginCheck", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_ALLOWED_ORIGINS": "*.example.com"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Origin": {"https://evil.test"}},
		})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: err=%v resp=%v, want 403", err, resp)
		}
		for _, origin := range []string{"https://app.example.com", "http://" + n.addr} {
			c := dialWS(t, n, "", http.Header{"Origin": {origin}})
			if f := c.must(5 * time.Second); f.Type != "welcome" {
				t.Fatalf("origin %s: %s", origin, short(f.raw))
			}
		}
	})

	t.Run("ConnectionLimitCloses1013", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_MAX_CONNECTIONS": "1"})
		first := dialWS(t, n, "", nil)
		first.next("welcome")
		second := dialWS(t, n, "", nil)
		if code := second.closeStatus(5 * time.Second); code != websocket.StatusTryAgainLater {
			t.Fatalf("over the limit: close %v, want 1013", code)
		}
		resp := getJSON(t, n.url("/v1/sse?symbols=KRW-BTC"), nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("SSE over the limit: %d", resp.StatusCode)
		}
		if got := n.metric("quotehub_closes_total", "transport", "ws", "code", "1013"); got != 1 {
			t.Errorf("quotehub_closes_total{ws,1013} = %v, want 1", got)
		}
	})

	t.Run("UnansweredPingCloses", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_PING_INTERVAL": "50ms", "QUOTEHUB_PONG_TIMEOUT": "100ms"})
		reader := dialWS(t, n, "", nil)
		silent := dialWS(t, n, "", nil) // never reads, so never answers a ping
		done := make(chan websocket.StatusCode, 1)
		go func() { done <- reader.closeStatus(700 * time.Millisecond * 100) }()
		poll.Until(t, 5*time.Second, "the silent client to be dropped", func() bool { return n.hub.Connections() == 1 })
		select {
		case code := <-done:
			t.Fatalf("the reading client was closed too (%v)", code)
		case <-time.After(300 * time.Millisecond):
		}
		_ = silent
		reader.conn.CloseNow()
		<-done
	})
}

// TestSlowConsumer: a client that never reads stops costing anything: its
// outbox conflates, and after the slow-consumer timeout it is closed.
func TestSlowConsumer(t *testing.T) {
	n := startNode(t, map[string]string{
		"QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_REFRESH_INTERVAL": "10ms", "QUOTEHUB_SLOW_CONSUMER_TIMEOUT": "500ms",
	})
	dialSlowReader(t, n, 200) // and never read
	poll.Until(t, 20*time.Second, "the slow consumer to be closed", func() bool {
		return n.metric("quotehub_slow_consumer_disconnects_total") == 1 && n.hub.Connections() == 0
	})
	if got := n.metric("quotehub_closes_total", "transport", "ws", "code", "4000"); got != 1 {
		t.Errorf("quotehub_closes_total{ws,4000} = %v, want 1", got)
	}
	if got := n.metric("quotehub_quotes_conflated_total"); got == 0 {
		t.Error("nothing was conflated for a client that never read")
	}
}

// TestConflationConverges: a client that pauses reading gets, when it reads
// again, the newest value of every symbol, never a lower or repeated seq.
func TestConflationConverges(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_REFRESH_INTERVAL": "10ms"})
	conn, syms := dialSlowReader(t, n, 200)
	c := &wsClient{t: t, conn: conn, last: map[string]uint64{}, snap: map[string]bool{}}
	readFor := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			if _, err := c.read(5 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Pauses long enough for the kernel's socket buffers to fill and the
	// outbox to conflate; the hub counts conflation when the writer drains,
	// so each pause is followed by some reading.
	for pause := 0; n.metric("quotehub_quotes_conflated_total") == 0; pause++ {
		if pause == 10 {
			t.Fatal("10 pauses of 1 s and nothing was conflated")
		}
		time.Sleep(time.Second) // not reading
		readFor(300 * time.Millisecond)
	}
	// Every symbol arrives, however slowly this reader goes.
	for end := time.Now().Add(10 * time.Second); len(c.last) < 200 && time.Now().Before(end); {
		readFor(50 * time.Millisecond)
	}
	if len(c.last) != 200 {
		t.Fatalf("got quotes of %d of 200 symbols", len(c.last))
	}
	// Converged: within a moment the client holds at least what the cache
	// held (read checks that no seq ever went backwards or repeated).
	want := map[string]uint64{}
	for _, s := range syms[:10] {
		var q map[string]any
		getJSON(t, n.url("/v1/quotes/"+s), &q)
		want[s] = uint64(q["seq"].(float64))
	}
	behind := func() []string {
		var out []string
		for s, seq := range want {
			if c.last[s] < seq {
				out = append(out, fmt.Sprintf("%s holds %d < %d", s, c.last[s], seq))
			}
		}
		return out
	}
	for end := time.Now().Add(10 * time.Second); len(behind()) > 0 && time.Now().Before(end); {
		if _, err := c.read(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if b := behind(); len(b) > 0 {
		t.Errorf("client did not converge to the cache: %v", b)
	}
}

// dialSlowReader connects a WebSocket client with a small receive buffer
// (so the server's socket fills quickly when it does not read) subscribed
// to the first k synthetic symbols, which it returns.
func dialSlowReader(t *testing.T, n *testNode, k int) (*websocket.Conn, []string) {
	t.Helper()
	var syms []string
	for i := range k {
		syms = append(syms, fmt.Sprintf("SYN-%06d", i+1))
	}
	dialer := &net.Dialer{Control: sockopt.RcvBuf(4096)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws?symbols="+strings.Join(syms, ","), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return conn, syms
}

// TestVanishMidWrite: clients that drop their TCP connection while the
// server writes to them leave nothing behind.
func TestVanishMidWrite(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_REFRESH_INTERVAL": "5ms"})
	var syms []string
	for i := range 200 {
		syms = append(syms, fmt.Sprintf("SYN-%06d", i+1))
	}
	for range 20 {
		var raw net.Conn
		dialer := &net.Dialer{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, _, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws?symbols="+strings.Join(syms, ","), &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, netw, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, netw, addr)
				raw = c
				return c, err
			}}},
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadLimit(1 << 24)
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		for i := 0; i < 3; i++ { // welcome, subscribed, then quotes are flowing
			if _, _, err := conn.Read(rctx); err != nil {
				t.Fatal(err)
			}
		}
		rcancel()
		raw.(*net.TCPConn).SetLinger(0) // reset, not a clean FIN
		raw.Close()
		conn.CloseNow()
	}
	poll.Until(t, 10*time.Second, "every connection to be cleaned up", func() bool {
		return n.hub.Connections() == 0 && n.metric("quotehub_subscriptions") == 0
	})
}

// TestSubscribeFlips: thousands of subscribe/unsubscribe flips per second
// on one connection keep the registry exact.
func TestSubscribeFlips(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_OPS_PER_SECOND": "1000000"})
	c := dialWS(t, n, "", nil)
	c.next("welcome")
	const flips = 2000
	start := time.Now()
	go func() {
		for i := range flips {
			op := "subscribe"
			if i%2 == 1 {
				op = "unsubscribe"
			}
			c.send(`{"op":"` + op + `","symbols":["KRW-BTC","KRW-ETH","AAPL"]}`)
		}
	}()
	replies := 0
	for replies < flips {
		f := c.must(10 * time.Second)
		switch f.Type {
		case "subscribed", "unsubscribed":
			replies++
		case "quotes":
		default:
			t.Fatalf("unexpected %s", short(f.raw))
		}
	}
	t.Logf("%d flips in %s (%.0f/s)", flips, time.Since(start), flips/time.Since(start).Seconds())
	if got := n.metric("quotehub_subscriptions"); got != 0 {
		t.Errorf("subscriptions = %v after an even number of flips", got)
	}
	if got := len(n.hub.Symbols()); got != 0 {
		t.Errorf("%d symbols still registered", got)
	}
}

// TestWSOrigin: a browser's WebSocket from a foreign origin is refused with
// 403 and the protocol's one error shape; the node's own host and allowed
// patterns are accepted; a client without Origin (not a browser) too.
func TestWSOrigin(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_ALLOWED_ORIGINS": "*.example.com"})
	for _, tc := range []struct {
		origin string
		allow  bool
	}{
		{"", true},
		{"http://" + n.addr, true},
		{"https://app.example.com", true},
		{"https://evil.test", false},
		{"null", false},
	} {
		req, _ := http.NewRequest("GET", n.url("/v1/ws"), nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "13")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		decodeErr := decodeBody(resp, &e)
		resp.Body.Close()
		switch {
		case tc.allow && resp.StatusCode != http.StatusSwitchingProtocols:
			t.Errorf("Origin %q: status %d, want 101", tc.origin, resp.StatusCode)
		case !tc.allow && (resp.StatusCode != http.StatusForbidden || decodeErr != nil || e.Error.Code != "forbidden" || e.Error.Message == ""):
			t.Errorf("Origin %q: %d %+v (%v), want 403 with {\"error\":{\"code\":\"forbidden\",...}}", tc.origin, resp.StatusCode, e, decodeErr)
		}
	}
	// Each refused handshake is counted by route and status; the accepted
	// ones are not requests but streams.
	if got := n.metric("quotehub_http_request_duration_seconds", "route", "/v1/ws", "code", "403"); got != 2 {
		t.Errorf("refused handshakes counted %v, want 2", got)
	}
	if got := n.metric("quotehub_http_request_duration_seconds", "route", "/v1/ws", "code", "101"); got != 0 {
		t.Errorf("accepted handshakes counted as requests: %v", got)
	}
}

// TestWSInvalidUTF8: a text frame that is not UTF-8 fails the connection
// with 1007 (RFC 6455, section 8.1), after what was queued before it.
func TestWSInvalidUTF8(t *testing.T) {
	n := startNode(t, nil)
	c := dialWS(t, n, "", nil)
	c.next("welcome")
	c.send(`{"op":"ping","id":"before"}`)
	c.send("{\"op\":\"ping\",\"id\":\"\xff\xfe\"}")
	if f := c.next("pong"); string(f.ID) != `"before"` {
		t.Errorf("pong id %s, want \"before\"", f.ID)
	}
	if got := c.closeStatus(5 * time.Second); got != websocket.StatusInvalidFramePayloadData {
		t.Errorf("close %d, want 1007", got)
	}
	if got := n.metric("quotehub_closes_total", "transport", "ws", "code", "1007"); got != 1 {
		t.Errorf("quotehub_closes_total{ws,1007} = %v, want 1", got)
	}
}
