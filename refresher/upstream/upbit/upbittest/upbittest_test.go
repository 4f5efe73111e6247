package upbittest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"quotehub/internal/poll"
	"quotehub/refresher/upstream/upbit/upbittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client returns an HTTP client whose idle connections are closed when the
// test ends, so that goleak sees no transport goroutines.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, b
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := upbittest.ReadTestdata(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrozenTickerIsTheDocumentedExample(t *testing.T) {
	s := upbittest.New(upbittest.Options{Frozen: true})
	defer s.Close()
	c := client(t)
	resp, body := get(t, c, s.URL()+"/v1/ticker?markets=KRW-ETH,KRW-BTC")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got, want []map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(testdata(t, "ticker_krw_btc.json"), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frozen answer differs from the documented example:\n got %v\nwant %v", got, want)
	}
	if h := resp.Header.Get("Remaining-Req"); !strings.HasPrefix(h, "group=ticker; min=600; sec=") {
		t.Errorf("Remaining-Req = %q", h)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if s.TickerRequests() != 1 || s.MarketsRequested() != 2 || s.Status(200) != 1 {
		t.Errorf("counters: ticker=%d markets=%d 200s=%d", s.TickerRequests(), s.MarketsRequested(), s.Status(200))
	}
}

func TestPricesMoveDeterministically(t *testing.T) {
	c := client(t)
	series := func() []float64 {
		s := upbittest.New(upbittest.Options{Seed: 7})
		defer s.Close()
		var out []float64
		for range 5 {
			_, body := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC,KRW-DOGE")
			var ts []struct {
				Market     string  `json:"market"`
				TradePrice float64 `json:"trade_price"`
				TradeTS    int64   `json:"trade_timestamp"`
			}
			if err := json.Unmarshal(body, &ts); err != nil || len(ts) != 2 {
				t.Fatalf("bad answer %s: %v", body, err)
			}
			for _, x := range ts {
				if x.TradePrice <= 0 || x.TradeTS < 1e12 {
					t.Fatalf("implausible ticker %+v", x)
				}
				out = append(out, x.TradePrice)
			}
		}
		return out
	}
	a, b := series(), series()
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different walks:\n%v\n%v", a, b)
	}
	if a[0] == a[2] && a[2] == a[4] {
		t.Errorf("KRW-BTC did not move: %v", a)
	}
}

func TestMarketAll(t *testing.T) {
	s := upbittest.New(upbittest.Options{})
	defer s.Close()
	_, body := get(t, client(t), s.URL()+"/v1/market/all")
	var ms []map[string]any
	if err := json.Unmarshal(body, &ms); err != nil {
		t.Fatal(err)
	}
	krw, other := 0, 0
	for _, m := range ms {
		code := m["market"].(string)
		if strings.HasPrefix(code, "KRW-") {
			krw++
		} else {
			other++
		}
		if m["korean_name"] == "" || m["english_name"] == "" || len(m) != 3 {
			t.Errorf("odd market %v", m)
		}
	}
	if krw < 40 || other == 0 {
		t.Errorf("%d KRW and %d other markets", krw, other)
	}
	if n := len(upbittest.MarketCodes("KRW")); n != krw {
		t.Errorf("MarketCodes(KRW) has %d codes, market/all %d", n, krw)
	}
	s.Delist("KRW-XRP", true)
	_, body = get(t, client(t), s.URL()+"/v1/market/all?is_details=true")
	if strings.Contains(string(body), "KRW-XRP") || !strings.Contains(string(body), `"market_event":{"warning":false`) {
		t.Errorf("delisted market listed, or no details: %.300s", body)
	}
}

func TestRemainingReqAndLimits(t *testing.T) {
	// The limits' clock stands still: every request falls in one second.
	stopped := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := upbittest.New(upbittest.Options{PerSecond: 3, BanAfter: 2, BanFor: 2 * time.Second, RetryAfterHeader: true,
		LimitNow: func() time.Time { return stopped }})
	defer s.Close()
	c := client(t)
	for want := 2; want >= 0; want-- {
		resp, _ := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if h, w := resp.Header.Get("Remaining-Req"), "group=ticker; min=600; sec="+string(rune('0'+want)); h != w {
			t.Fatalf("Remaining-Req = %q, want %q", h, w)
		}
	}
	// The market group has its own budget.
	if resp, _ := get(t, c, s.URL()+"/v1/market/all"); resp.StatusCode != 200 ||
		resp.Header.Get("Remaining-Req") != "group=market; min=600; sec=2" {
		t.Fatalf("market group: %d %q", resp.StatusCode, resp.Header.Get("Remaining-Req"))
	}
	resp, body := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || json.Valid(body) {
		t.Fatalf("over budget: %d Retry-After=%q body=%q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC") // second 429: the ban starts
	resp, body = get(t, c, s.URL()+"/v1/market/all")
	if resp.StatusCode != 418 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(body), `"name":418`) {
		t.Fatalf("banned: %d Retry-After=%q body=%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if s.Status(429) != 2 || s.Status(418) != 1 {
		t.Errorf("429s=%d 418s=%d", s.Status(429), s.Status(418))
	}
	s.Ban(0)
	s.SetBudget(100)
	if resp, _ := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC"); resp.StatusCode != 200 {
		t.Errorf("after lifting the ban: %d", resp.StatusCode)
	}
}

func TestBanTimeInBody(t *testing.T) {
	s := upbittest.New(upbittest.Options{BanTimeInBody: true})
	defer s.Close()
	s.Ban(30 * time.Second)
	resp, body := get(t, client(t), s.URL()+"/v1/ticker?markets=KRW-BTC")
	if resp.StatusCode != 418 || resp.Header.Get("Retry-After") != "" || !strings.Contains(string(body), "30 seconds") {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestUnknownMarkets(t *testing.T) {
	s := upbittest.New(upbittest.Options{})
	defer s.Close()
	c := client(t)
	resp, body := get(t, c, s.URL()+"/v1/ticker?markets=KRW-NOPE")
	if resp.StatusCode != 404 || strings.TrimSpace(string(body)) != strings.TrimSpace(string(testdata(t, "error_404.json"))) {
		t.Fatalf("unknown: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC,KRW-NOPE"); resp.StatusCode != 404 {
		t.Fatalf("mixed, whole: %d", resp.StatusCode)
	}
	s.SetUnknown(upbittest.UnknownEmpty, upbittest.MixedWhole)
	if resp, body := get(t, c, s.URL()+"/v1/ticker?markets=KRW-BTC,KRW-NOPE"); resp.StatusCode != 200 || string(body) != "[]" {
		t.Fatalf("mixed, whole, empty: %d %s", resp.StatusCode, body)
	}
	s.SetUnknown(upbittest.Unknown404, upbittest.MixedKnownOnly)
	resp, body = get(t, c, s.URL()+"/v1/ticker?markets=KRW-NOPE,KRW-BTC")
	var ts []map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &ts) != nil || len(ts) != 1 || ts[0]["market"] != "KRW-BTC" {
		t.Fatalf("mixed, known only: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/ticker"); resp.StatusCode != 400 {
		t.Fatalf("no markets parameter: %d", resp.StatusCode)
	}
}

func TestMaxMarkets(t *testing.T) {
	s := upbittest.New(upbittest.Options{MaxMarkets: 5})
	defer s.Close()
	_, body := get(t, client(t), s.URL()+"/v1/ticker?markets="+strings.Join(upbittest.MarketCodes("KRW")[:8], ","))
	var ts []map[string]any
	if err := json.Unmarshal(body, &ts); err != nil || len(ts) != 5 {
		t.Fatalf("%d objects (%v)", len(ts), err)
	}
}

func TestCustomMarkets(t *testing.T) {
	s := upbittest.New(upbittest.Options{Frozen: true, Markets: []upbittest.Market{
		{Code: "KRW-FOO", KoreanName: "푸", EnglishName: "Foo", Price: 1234.4},
	}})
	defer s.Close()
	_, body := get(t, client(t), s.URL()+"/v1/ticker?markets=KRW-FOO")
	var ts []map[string]any
	if err := json.Unmarshal(body, &ts); err != nil || len(ts) != 1 || ts[0]["trade_price"] != 1234.0 ||
		ts[0]["change"] != "EVEN" || ts[0]["trade_timestamp"].(float64) < 1e12 {
		t.Fatalf("custom market: %s", body)
	}
}

func TestFaults(t *testing.T) {
	s := upbittest.New(upbittest.Options{})
	defer s.Close()
	c := client(t)
	url := s.URL() + "/v1/ticker?markets=KRW-BTC,KRW-ETH"

	s.SetDown(true)
	resp, body := get(t, c, url)
	if resp.StatusCode != 503 || json.Valid(body) {
		t.Fatalf("down: %d %s", resp.StatusCode, body)
	}
	s.SetDown(false)

	s.SetTruncate(true)
	if resp, err := c.Get(url); err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || json.Valid(b) {
			t.Fatalf("truncate: read %d bytes without error", len(b))
		}
	}
	s.SetTruncate(false)

	s.SetReset(true)
	if resp, err := c.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("reset: got a response %d", resp.StatusCode)
	}
	s.SetReset(false)
	if s.Status(0) == 0 {
		t.Errorf("resets not counted")
	}

	s.SetLatency(300 * time.Millisecond)
	start := time.Now()
	get(t, c, url)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("latency: answered in %v", d)
	}
	short := &http.Client{Transport: c.Transport, Timeout: 50 * time.Millisecond}
	if _, err := short.Get(url); err == nil {
		t.Errorf("latency: a 50 ms client got an answer")
	}
	s.SetLatency(0)

	s.SetMalformed("KRW-ETH", upbittest.MissingPrice)
	s.SetMalformed("KRW-BTC", upbittest.SecondsTimestamp)
	_, body = get(t, c, url)
	var ts []map[string]any
	if err := json.Unmarshal(body, &ts); err != nil || len(ts) != 2 {
		t.Fatalf("malformed: %s", body)
	}
	for _, x := range ts {
		switch x["market"] {
		case "KRW-ETH":
			if _, ok := x["trade_price"]; ok {
				t.Errorf("KRW-ETH still has a price")
			}
		case "KRW-BTC":
			if x["trade_timestamp"].(float64) > 1e11 {
				t.Errorf("KRW-BTC timestamp in ms: %v", x["trade_timestamp"])
			}
		}
	}
}

// dial opens a raw WebSocket to the fake.
func dial(t *testing.T, s *upbittest.Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return typ, m
}

func write(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestWebSocketTicker(t *testing.T) {
	s := upbittest.New(upbittest.Options{TickEvery: 20 * time.Millisecond})
	defer s.Close()
	c := dial(t, s)
	write(t, c, `[{"ticket":"t1"},{"type":"ticker","codes":["KRW-BTC","KRW-ETH"]},{"format":"DEFAULT"}]`)
	var doc map[string]any
	if err := json.Unmarshal(testdata(t, "ws_ticker.json"), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for len(seen) < 2 || seen["KRW-BTC"] != "REALTIME" || seen["KRW-ETH"] != "REALTIME" {
		typ, m := read(t, c)
		if typ != websocket.MessageBinary {
			t.Fatalf("frame type %v, want binary", typ)
		}
		if !slices.Equal(keys(m), keys(doc)) {
			t.Fatalf("keys differ from the documented message:\n got %v\nwant %v", keys(m), keys(doc))
		}
		code, st := m["code"].(string), m["stream_type"].(string)
		if seen[code] == "" && st != "SNAPSHOT" {
			t.Fatalf("first message of %s is %s", code, st)
		}
		seen[code] = st
	}
	if s.Subscriptions() != 1 || !slices.Equal(s.LastSubscription(), []string{"KRW-BTC", "KRW-ETH"}) {
		t.Errorf("subscriptions %d, last %v", s.Subscriptions(), s.LastSubscription())
	}

	// A new subscription replaces the old one.
	write(t, c, `[{"ticket":"t2"},{"type":"ticker","codes":["KRW-XRP"],"isOnlyRealtime":true}]`)
	poll.Until(t, 2*time.Second, "the new subscription", func() bool { return s.Subscriptions() == 2 })
	// A tick under way when the subscription changed may still send the
	// old codes; the first KRW-XRP comes from a later tick, after them.
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no KRW-XRP in 100 messages after resubscribing")
		}
		_, m := read(t, c)
		if m["code"] == "KRW-XRP" {
			if m["stream_type"] != "REALTIME" {
				t.Fatalf("after resubscribing: %v %v", m["code"], m["stream_type"])
			}
			break
		}
		if m["code"] != "KRW-BTC" && m["code"] != "KRW-ETH" {
			t.Fatalf("after resubscribing: %v %v", m["code"], m["stream_type"])
		}
	}
	for range 5 {
		_, m := read(t, c)
		if m["code"] != "KRW-XRP" || m["stream_type"] != "REALTIME" {
			t.Fatalf("after resubscribing: %v %v", m["code"], m["stream_type"])
		}
	}
}

func TestWebSocketTextFramesAndSnapshotOnly(t *testing.T) {
	s := upbittest.New(upbittest.Options{TextFrames: true, TickEvery: 10 * time.Millisecond})
	defer s.Close()
	c := dial(t, s)
	write(t, c, `[{"ticket":"t"},{"type":"ticker","codes":["KRW-SOL"],"is_only_snapshot":true}]`)
	typ, m := read(t, c)
	if typ != websocket.MessageText || m["stream_type"] != "SNAPSHOT" {
		t.Fatalf("%v %v", typ, m["stream_type"])
	}
	write(t, c, "PING")
	if _, m := read(t, c); m["status"] != "UP" {
		t.Fatalf("after PING: %v (no realtime message expected)", m)
	}
}

func TestWebSocketErrors(t *testing.T) {
	s := upbittest.New(upbittest.Options{})
	defer s.Close()
	c := dial(t, s)
	for msg, name := range map[string]string{
		`[{"type":"ticker","codes":["KRW-BTC"]}]`:            "NO_TICKET",
		`[{"ticket":"x"},{"type":"ticker"}]`:                 "NO_CODES",
		`[{"ticket":"x"},{"type":"ticker","codes":[]}]`:      "INVALID_PARAM",
		`[{"ticket":"x"},{"codes":["KRW-BTC"]}]`:             "NO_TYPE",
		`{"ticket":"x"}`:                                     "WRONG_FORMAT",
		`[{"ticket":"x"},{"format":"SIMPLE"}]`:               "WRONG_FORMAT",
		`[{"ticket":"x"},{"type":"ticker","codes":"KRW-A"}]`: "WRONG_FORMAT",
	} {
		write(t, c, msg)
		_, m := read(t, c)
		e, _ := m["error"].(map[string]any)
		if e == nil || e["name"] != name || e["message"] == "" {
			t.Errorf("%s: got %v, want error %s", msg, m, name)
		}
	}
	s.FailSubscriptions(1)
	write(t, c, `[{"ticket":"x"},{"type":"ticker","codes":["KRW-BTC"]}]`)
	if _, m := read(t, c); m["error"] == nil {
		t.Errorf("FailSubscriptions: %v", m)
	}
	write(t, c, `[{"ticket":"x"},{"type":"ticker","codes":["KRW-BTC"]}]`)
	if _, m := read(t, c); m["code"] != "KRW-BTC" {
		t.Errorf("after the failure: %v", m)
	}
	if s.Subscriptions() != 1 {
		t.Errorf("Subscriptions() = %d, want 1", s.Subscriptions())
	}
}

func TestWebSocketIdleClose(t *testing.T) {
	s := upbittest.New(upbittest.Options{IdleTimeout: 150 * time.Millisecond})
	defer s.Close()
	// The server's idle clock starts when it accepts, which a busy machine
	// can report to the dialer well after: the lower bound holds only from
	// before the dial.
	start := time.Now()
	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("idle connection not closed: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
	poll.Until(t, time.Second, "no open stream", func() bool { return s.OpenStreams() == 0 })
}

func TestDropStreamAndDown(t *testing.T) {
	s := upbittest.New(upbittest.Options{TickEvery: 10 * time.Millisecond})
	defer s.Close()
	c := dial(t, s)
	write(t, c, `[{"ticket":"x"},{"type":"ticker","codes":["KRW-BTC"]}]`)
	read(t, c)
	s.DropStream()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("connection not dropped")
			}
			break
		}
	}
	poll.Until(t, time.Second, "no open stream", func() bool { return s.OpenStreams() == 0 })
	s.SetDown(true)
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if c, resp, err := websocket.Dial(dctx, s.WSURL(), nil); err == nil || resp == nil || resp.StatusCode != 503 {
		if c != nil {
			c.CloseNow()
		}
		t.Fatalf("down: handshake not refused with 503: %v", err)
	}
	if s.WSConnections() != 1 {
		t.Errorf("WSConnections() = %d", s.WSConnections())
	}
}

func TestCloseWithOpenStreams(t *testing.T) {
	s := upbittest.New(upbittest.Options{TickEvery: 5 * time.Millisecond})
	c := dial(t, s)
	write(t, c, `[{"ticket":"x"},{"type":"ticker","codes":["KRW-BTC"]}]`)
	read(t, c)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs with an open stream")
	}
	s.Close() // twice is fine
}
