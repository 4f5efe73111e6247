package web_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"quotehub/internal/poll"
	"quotehub/internal/testcert"
	"quotehub/web"
)

// limitedNode starts a node with limits and returns it with the registry
// its refusals are counted in.
func limitedNode(t *testing.T, l web.Limits) (*node, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	n := startNode(t, func(o *web.Options) {
		o.Limits = l
		o.Gatherer, o.Registerer = reg, reg
	})
	return n, reg
}

// refused returns quotehub_refused_total{reason}.
func refused(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "quotehub_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no quotehub_refused_total{reason=%q}", reason)
	return 0
}

// dialRaw opens a TCP connection to n, closed when the test ends.
func dialRaw(t *testing.T, n *node) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantRefusedConn reads what the node answered on c without being asked:
// a 429 with Retry-After and the rate_limited error, then the end.
func wantRefusedConn(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.RemoteAddr().String()+"/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("a connection over the limit: no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	wantError(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("a refused connection got no Retry-After")
	}
}

// healthy reports whether a new connection to n answers /healthz with 200.
func healthy(n *node) bool {
	c, err := net.Dial("tcp", n.addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+n.addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// One address holds at most Conns connections: the next is answered 429
// and closed before anything is read; once one closes, a new one is
// served. Another address is not affected (loopback exempted here stands
// for it).
func TestLimitConnectionsPerAddress(t *testing.T) {
	n, reg := limitedNode(t, web.Limits{Conns: 3})
	held := []net.Conn{dialRaw(t, n), dialRaw(t, n), dialRaw(t, n)}
	// The node has them once it answers on one of them.
	if _, err := io.WriteString(held[0], "GET /healthz HTTP/1.1\r\nHost: "+n.addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(held[0])
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a connection within the limit: %v %v", resp, err)
	}
	resp.Body.Close()
	wantRefusedConn(t, dialRaw(t, n))
	if got := refused(t, reg, "ip_connections"); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
	held[1].Close()
	poll.Until(t, 5*time.Second, "a new connection to be served once one closed", func() bool { return healthy(n) })

	// Exempt addresses are never limited.
	m, _ := limitedNode(t, web.Limits{Conns: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	dialRaw(t, m)
	dialRaw(t, m)
	if !healthy(m) {
		t.Error("an exempt address was limited")
	}
}

// Connections that opened and sent half a request (a handshake in
// progress) count against Pending; idle keep-alive connections and
// streams do not.
func TestLimitPendingPerAddress(t *testing.T) {
	n, reg := limitedNode(t, web.Limits{Pending: 2})
	// A WebSocket is a stream: not pending once open.
	ws := dialWSClient(t, n, "")
	defer ws.CloseNow()
	for range 2 {
		c := dialRaw(t, n)
		if _, err := io.WriteString(c, "GET /v1/ws HTTP/1.1\r\nHost: "+n.addr+"\r\nUpgrade: websocket\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	wantRefusedConn(t, dialRaw(t, n))
	if got := refused(t, reg, "ip_pending"); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
}

func dialWSClient(t *testing.T, n *node, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws"+query, &websocket.DialOptions{HTTPClient: n.client})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closeCode reads c until it ends and returns its close code.
func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// One address holds at most Streams WebSockets and SSE streams: a
// WebSocket over it is closed with 1013, an SSE request answered 429.
func TestLimitStreamsPerAddress(t *testing.T) {
	n, reg := limitedNode(t, web.Limits{Streams: 2})
	a := dialWSClient(t, n, "")
	defer a.CloseNow()
	b := dialWSClient(t, n, "")
	defer b.CloseNow()
	over := dialWSClient(t, n, "")
	if got := closeCode(t, over); got != websocket.StatusTryAgainLater {
		t.Errorf("a WebSocket over the limit closed with %d, want 1013", got)
	}
	resp, body := n.get(t, "/v1/sse?symbols=KRW-BTC")
	wantError(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on an SSE refusal")
	}
	if got := refused(t, reg, "ip_streams"); got != 2 {
		t.Errorf("refusals counted: %v, want 2", got)
	}
	a.Close(websocket.StatusNormalClosure, "")
	poll.Until(t, 5*time.Second, "a stream to be allowed once one closed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url("/v1/sse?symbols=KRW-BTC"), nil)
		resp, err := n.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Reads are rate limited per client address, bursts of twice the rate;
// X-Forwarded-For names the client only when the peer is a trusted proxy.
func TestLimitReadsPerAddress(t *testing.T) {
	read := func(n *node, xff string) *http.Response {
		resp, _ := n.get(t, "/v1/symbols?q=KRW", "X-Forwarded-For", xff)
		return resp
	}
	// Untrusted peer: X-Forwarded-For is ignored, every request is the
	// peer's.
	n, reg := limitedNode(t, web.Limits{Reads: 1})
	for i, xff := range []string{"203.0.113.1", "203.0.113.2"} {
		if got := read(n, xff).StatusCode; got != http.StatusOK {
			t.Fatalf("read %d within the burst: %d", i, got)
		}
	}
	resp, body := n.get(t, "/v1/symbols?q=KRW", "X-Forwarded-For", "203.0.113.3")
	wantError(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on a read refusal")
	}
	if got := refused(t, reg, "ip_reads"); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}

	// Trusted proxy: each forwarded client has a budget of its own.
	m, _ := limitedNode(t, web.Limits{Reads: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	for range 2 {
		if got := read(m, "203.0.113.1").StatusCode; got != http.StatusOK {
			t.Fatalf("forwarded client 1 within its burst: %d", got)
		}
	}
	if got := read(m, "203.0.113.1").StatusCode; got != http.StatusTooManyRequests {
		t.Errorf("forwarded client 1 over its budget: %d, want 429", got)
	}
	if got := read(m, "203.0.113.2").StatusCode; got != http.StatusOK {
		t.Errorf("forwarded client 2 got %d, want its own budget", got)
	}
	// A client cannot pick its address by prepending to the header: the
	// rightmost untrusted hop counts.
	if got := read(m, "198.51.100.7, 203.0.113.1").StatusCode; got != http.StatusTooManyRequests {
		t.Errorf("a spoofed leftmost hop escaped the limit: %d", got)
	}
}

// A WebSocket that sends control frames faster than its allowance is
// closed with 1008.
func TestLimitControlFrames(t *testing.T) {
	n, reg := limitedNode(t, web.Limits{ControlFrames: 5})
	c := dialWSClient(t, n, "")
	defer c.CloseNow()
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				readErr <- err
				return
			}
		}
	}()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.Ping(ctx)
		cancel()
	}
	if err == nil {
		t.Fatal("100 pings in a row were all answered")
	}
	if got := websocket.CloseStatus(<-readErr); got != websocket.StatusPolicyViolation {
		t.Errorf("closed with %d, want 1008", got)
	}
	if got := refused(t, reg, "control_frames"); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
}

// rawStatus sends a request head on a new connection and returns the
// response's status.
func rawStatus(t *testing.T, n *node, head string) int {
	t.Helper()
	c := dialRaw(t, n)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to %q: %v", head, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Requests for a Host the node does not serve are refused with 403: a
// DNS-rebinding page (its own name resolving to the node, Origin and Host
// alike) cannot open a WebSocket or read.
func TestHostAllowList(t *testing.T) {
	n, reg := limitedNode(t, web.Limits{Hosts: []string{"quotes.example.com", "*.example.org"}})
	ws := func(host, origin string) string {
		return "GET /v1/ws HTTP/1.1\r\nHost: " + host + "\r\nOrigin: " + origin + "\r\nUpgrade: websocket\r\n" +
			"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	}
	get := func(host string) string {
		return "GET /v1/quotes/KRW-BTC HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}
	for _, tc := range []struct {
		name, head string
		want       int
	}{
		{"rebinding WebSocket", ws("evil.example", "http://evil.example"), http.StatusForbidden},
		{"rebinding read", get("evil.example:8080"), http.StatusForbidden},
		{"listed name", ws("quotes.example.com", "https://quotes.example.com"), http.StatusSwitchingProtocols},
		{"listed pattern", ws("eu.example.org", "https://eu.example.org"), http.StatusSwitchingProtocols},
		{"IP address", ws(n.addr, "http://"+n.addr), http.StatusSwitchingProtocols},
		{"localhost", ws("localhost", "http://localhost"), http.StatusSwitchingProtocols},
		{"suffix of a listed name", get("quotes.example.com.evil.net"), http.StatusForbidden},
	} {
		if got := rawStatus(t, n, tc.head); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := refused(t, reg, "host"); got != 3 {
		t.Errorf("refusals counted: %v, want 3", got)
	}
}

// With TLS the node serves HTTPS, WebSockets included, and offers only
// HTTP/1.1 (a WebSocket cannot go over HTTP/2 here).
func TestTLS(t *testing.T) {
	cert, _, _ := testcert.New(t)
	n := startNode(t, func(o *web.Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	})
	pool := testcert.Pool(t, cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + n.addr + "/v1/quotes/KRW-BTC")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Errorf("served over %s, want HTTP/1.1", resp.Proto)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+n.addr+"/v1/ws?symbols=KRW-BTC", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"welcome"`) {
		t.Fatalf("first message over wss: %s %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
}
