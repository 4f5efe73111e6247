package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"quotehub"
	"quotehub/web"
)

// sseStream is one SSE response read off a raw loopback connection, so
// that the body can be compared byte for byte.
type sseStream struct {
	conn net.Conn
	resp *http.Response
	body *bufio.Reader
}

// openSSE sends GET /v1/sse with query and reads the response head.
func openSSE(t *testing.T, n *node, query string) *sseStream {
	t.Helper()
	return openStream(t, n, "/v1/sse"+query, "")
}

// openStream sends GET path (with its query) and extra header lines
// ("Name: value\r\n" each), and reads the response head.
func openStream(t *testing.T, n *node, path, headers string) *sseStream {
	t.Helper()
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", path, n.addr, headers); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response head: %v", err)
	}
	return &sseStream{conn: conn, resp: resp, body: bufio.NewReader(resp.Body)}
}

// expect reads exactly len(want) bytes of the stream and compares them.
func (s *sseStream) expect(t *testing.T, what, want string) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(s.body, got)
	if err != nil || string(got) != want {
		t.Fatalf("%s: read %q (%v)\nwant %q", what, got[:n], err, want)
	}
}

// errorEvent is the event of a rejected symbol: its rejection as data, in
// the protocol's field order.
func errorEvent(sym, code, message string) string {
	b, _ := json.Marshal(struct {
		Symbol  string `json:"symbol"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{sym, code, message})
	return "event: error\ndata: " + string(b) + "\n\n"
}

func quoteEvent(id int, q quotehub.Quote) string {
	return fmt.Sprintf("event: quote\nid: %d\ndata: %s\n\n", id, q.AppendJSON(nil))
}

// TestSSEFraming: the stream, byte for byte: retry, one error event per
// rejected symbol, the snapshot, then live quotes with rising ids; a quote
// a client already has a newer seq of is not sent.
func TestSSEFraming(t *testing.T) {
	n := startNode(t, nil)
	btc := quote("KRW-BTC", 100, 10, time.Second)
	if _, err := n.cache.Put(context.Background(), btc); err != nil {
		t.Fatal(err)
	}
	s := openSSE(t, n, "?symbols=KRW-BTC,bad!,krw-eth,NOPE,KRW-BTC")
	h := s.resp.Header
	if s.resp.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream; charset=utf-8" || h.Get("Cache-Control") != "no-cache" ||
		h.Get("X-Accel-Buffering") != "no" || !s.resp.Close {
		t.Fatalf("stream head: %d %v (close-delimited %v)", s.resp.StatusCode, h, s.resp.Close)
	}
	rejected := []struct{ sym, code string }{{"bad!", quotehub.EInvalidSymbol}, {"NOPE", quotehub.EUnknownSymbol}}
	_, rej, err := n.hub.Resolve(context.Background(), []string{"bad!", "NOPE"})
	if err != nil || len(rej) != 2 {
		t.Fatalf("Resolve: %v %v", rej, err)
	}
	want := "retry: 3000\n\n"
	for i, r := range rejected {
		if rej[i].Code != r.code {
			t.Fatalf("rejection of %s: %+v", r.sym, rej[i])
		}
		want += errorEvent(r.sym, r.code, rej[i].Message)
	}
	want += quoteEvent(1, btc) // KRW-ETH has no value yet: no snapshot
	s.expect(t, "retry, rejections and snapshot", want)

	// Live updates. The snapshot came after both symbols were subscribed.
	eth := quote("KRW-ETH", 200, 5, 0)
	older := quote("KRW-BTC", 99, 9, 0) // below what the client has: dropped
	newer := quote("KRW-BTC", 101, 11, 0)
	for _, qs := range [][]quotehub.Quote{{eth}, {older}, {newer}} {
		if err := n.bus.Publish(context.Background(), qs); err != nil {
			t.Fatal(err)
		}
	}
	s.expect(t, "live quotes", quoteEvent(2, eth)+quoteEvent(3, newer))
}

// TestSSEKeepalive: a silent stream gets a keepalive comment every
// configured period, and nothing else.
func TestSSEKeepalive(t *testing.T) {
	const every = 50 * time.Millisecond
	n := startNode(t, func(o *web.Options) { o.SSEKeepalive = every })
	btc := quote("KRW-BTC", 100, 10, time.Second)
	if _, err := n.cache.Put(context.Background(), btc); err != nil {
		t.Fatal(err)
	}
	s := openSSE(t, n, "?symbols=KRW-BTC")
	s.expect(t, "retry and snapshot", "retry: 3000\n\n"+quoteEvent(1, btc))
	start := time.Now()
	for i := range 3 {
		s.expect(t, fmt.Sprintf("keepalive %d", i+1), ": keepalive\n\n")
	}
	// Three silent periods: at least 3 × 50 ms; generous above.
	d := time.Since(start)
	t.Logf("three keepalives in %v at a %v period", d, every)
	if d < 2*every {
		t.Errorf("three keepalives within %v; the period is %v", d, every)
	}
	// A quote still comes through, with the next id.
	newer := quote("KRW-BTC", 101, 11, 0)
	if err := n.bus.Publish(context.Background(), []quotehub.Quote{newer}); err != nil {
		t.Fatal(err)
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds the loop: keepalives keep coming
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for the quote: %v", err)
		}
		if line == ": keepalive\n" || line == "\n" {
			continue // a keepalive may come first
		}
		rest := quoteEvent(2, newer)
		if line != strings.SplitAfter(rest, "\n")[0] {
			t.Fatalf("after keepalives: %q, want %q", line, rest)
		}
		s.expect(t, "the quote", strings.TrimPrefix(rest, line))
		return
	}
}

// TestSSERefusedBeforeTheStreamOpens: what cannot be served is answered
// with a status and the protocol's JSON error, not an empty stream.
func TestSSERefusedBeforeTheStreamOpens(t *testing.T) {
	n := startNode(t, nil)
	var many []string
	for i := range 201 {
		many = append(many, fmt.Sprintf("SYN-%03d", i%120)+strings.Repeat("X", i/120))
	}
	for _, tc := range []struct {
		query  string
		status int
		code   string
		msg    string // part of the message, when it matters
	}{
		{"", 400, quotehub.EBadRequest, ""},
		{"?symbols=", 400, quotehub.EBadRequest, ""},
		{"?symbols=,,", 400, quotehub.EBadRequest, ""},
		{"?symbols=" + strings.Join(many, ","), 400, quotehub.ETooManySymbols, "201"},
		{"?symbols=NOPE,bad!", 400, quotehub.EInvalidSymbol, "(and 1 more rejected)"},
		{"?symbols=NOPE,ALSO-NOPE", 404, quotehub.EUnknownSymbol, "NOPE"},
	} {
		resp, body := n.get(t, "/v1/sse"+tc.query)
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("/v1/sse%.40s: a stream opened", tc.query)
		}
		if msg := wantError(t, resp, body, tc.status, tc.code); !strings.Contains(msg, tc.msg) {
			t.Errorf("/v1/sse%.40s: message %q, want it to mention %q", tc.query, msg, tc.msg)
		}
	}
	if c := n.hub.Connections(); c != 0 {
		t.Errorf("%d connections held after refusals", c)
	}
}
