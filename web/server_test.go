package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/hub"
	"quotehub/refresher"
	"quotehub/store/memory"
	"quotehub/web"
)

// now is the refresher's clock in these tests: it stands still, so ages,
// max-age and fetched_at are exact.
var now = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// testCatalog has crypto symbols (always open), a Korean stock, a US stock
// and enough synthetic entries to reach the search limit.
func testCatalog() []quotehub.SymbolInfo {
	c := []quotehub.SymbolInfo{
		{Symbol: "KRW-BTC", Name: "비트코인", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
		{Symbol: "KRW-ETH", Name: "이더리움", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
		{Symbol: "KRW-XRP", Name: "리플", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
		{Symbol: "005930.KS", Name: "삼성전자", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
		{Symbol: "AAPL", Name: "Apple Inc.", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
	}
	for i := range 120 {
		c = append(c, quotehub.SymbolInfo{Symbol: fmt.Sprintf("SYN-%03d", i), Name: "Synthetic", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"})
	}
	return c
}

// provider is an upstream the test controls: it answers the symbols it has
// a price for, reports the others unknown, fails everything while fail is
// set, and while held, makes every fetch wait until released.
type provider struct {
	mu      sync.Mutex
	prices  map[string]float64
	fail    error
	gate    chan struct{}
	entered chan string // each fetch's first symbol, when it starts
	calls   atomic.Int64
	ended   atomic.Int64 // fetches that returned
}

func newProvider() *provider {
	return &provider{prices: map[string]float64{}, entered: make(chan string, 64)}
}

func (p *provider) set(sym string, price float64) {
	p.mu.Lock()
	p.prices[sym] = price
	p.mu.Unlock()
}

// hold makes fetches wait until the returned release is called (which the
// test's cleanup also does).
func (p *provider) hold(t *testing.T) (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

func (p *provider) Name() string  { return "test" }
func (p *provider) MaxBatch() int { return 10 }
func (p *provider) Fetch(ctx context.Context, syms []string) ([]quotehub.Quote, error) {
	p.calls.Add(1)
	defer p.ended.Add(1)
	select {
	case p.entered <- syms[0]:
	default:
	}
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	var qs []quotehub.Quote
	errs := quotehub.FetchErrors{}
	for _, s := range syms {
		price, ok := p.prices[s]
		if !ok {
			errs[s] = quotehub.Errorf(quotehub.EUnknownSymbol, "%s: no such market upstream", s)
			continue
		}
		qs = append(qs, quotehub.Quote{Symbol: s, Price: price, Currency: "KRW", TradeTime: now.Add(-time.Second).UnixMilli(),
			Source: "test", Market: quotehub.MarketOpen})
	}
	if len(errs) > 0 {
		return qs, errs
	}
	return qs, nil
}

// quote is a valid quote of sym fetched age ago (on the test clock).
func quote(sym string, price float64, seq uint64, age time.Duration) quotehub.Quote {
	return quotehub.Quote{Symbol: sym, Price: price, PrevClose: price - 1, Change: 1, Has: quotehub.HasPrevClose | quotehub.HasChange,
		Currency: "KRW", TradeTime: now.Add(-age - time.Second).UnixMilli(), FetchedAt: now.Add(-age).UnixMilli(),
		Seq: seq, Source: "test", Market: quotehub.MarketOpen}
}

// node is the real web server on loopback, wired as cmd/quotehub wires a
// single node: memory stores, the refresher (with the test's provider)
// as the reader, the hub behind the memory bus.
type node struct {
	srv       *web.Server
	hub       *hub.Hub
	cache     *memory.Cache
	bus       *memory.Bus
	prov      *provider
	addr      string // host:port
	client    *http.Client
	published chan []quotehub.Quote // every batch the bus delivered
}

func (n *node) url(path string) string { return "http://" + n.addr + path }

// startNode starts a node; mod adjusts the web server's options. Every
// goroutine it starts has ended when the test's cleanup is done.
func startNode(t *testing.T, mod func(*web.Options)) *node {
	t.Helper()
	return startNodeWith(t, nil, mod)
}

// startNodeWith is startNode with hubMod adjusting the hub's options.
func startNodeWith(t testing.TB, hubMod func(*hub.Options), mod func(*web.Options)) *node {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) }) // runs last
	n := &node{cache: memory.NewCache(), bus: memory.NewBus(), prov: newProvider(), published: make(chan []quotehub.Quote, 64)}
	catalog := memory.NewCatalog(testCatalog())
	var h *hub.Hub
	ref, err := refresher.New(refresher.Options{
		Cache: n.cache, Bus: n.bus, Active: memory.NewActiveSet(), Catalog: catalog,
		Sources: []refresher.Source{{Provider: n.prov, Interval: time.Hour}},
		Local:   func() []string { return h.Symbols() },
		Now:     func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	hopts := hub.Options{
		Cache: n.cache, Catalog: catalog, Node: "test-node",
		OnActive: ref.Activate, OnIdle: ref.Deactivate,
	}
	if hubMod != nil {
		hubMod(&hopts)
	}
	h = hub.New(hopts)
	n.hub = h
	n.bus.Handle(func(qs []quotehub.Quote) {
		h.Publish(qs)
		select {
		case n.published <- qs:
		default:
		}
	})
	opts := web.Options{Hub: h, Reader: ref, Catalog: catalog}
	if mod != nil {
		mod(&opts)
	}
	n.srv, err = web.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	tr := &http.Transport{}
	n.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	refDone := make(chan struct{})
	go func() { defer close(refDone); ref.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- n.srv.Serve(ln) }()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		webDone := make(chan error, 1)
		go func() { webDone <- n.srv.Shutdown(sctx) }()
		if err := h.Shutdown(sctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		if err := <-webDone; err != nil {
			t.Errorf("web shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cancel()
		<-refDone
	})
	return n
}

// get sends a GET with extra headers (name, value, ...) and returns the
// response and its body.
func (n *node) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return n.do(t, http.MethodGet, path, header...)
}

func (n *node) do(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return n.call(t, "", method, path, "", header...)
}

// wantError checks that resp is the protocol's JSON error with status and
// code, and returns its message.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("%s: %d %q %s; want %d with error code %q and a message",
			resp.Request.URL.RequestURI(), resp.StatusCode, resp.Header.Get("Content-Type"), body, status, code)
	}
	return e.Error.Message
}

func TestHealth(t *testing.T) {
	t.Run("Healthz", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/healthz")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"ok":true}` {
			t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("ReadyWhenEveryCheckPasses", func(t *testing.T) {
		n := startNode(t, func(o *web.Options) {
			o.Checks = map[string]quotehub.HealthChecker{"redis": check(nil)}
		})
		resp, body := n.get(t, "/readyz")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"ready":true}` {
			t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("NotReadyNamesTheReason", func(t *testing.T) {
		n := startNode(t, func(o *web.Options) {
			o.Checks = map[string]quotehub.HealthChecker{"redis": check(errors.New("dial tcp 127.0.0.1:6379: connection refused"))}
		})
		resp, body := n.get(t, "/readyz")
		want := `{"ready":false,"reasons":["redis: dial tcp 127.0.0.1:6379: connection refused"]}`
		if resp.StatusCode != 503 || strings.TrimSpace(string(body)) != want {
			t.Fatalf("/readyz with Redis down: %d %s; want 503 %s", resp.StatusCode, body, want)
		}
		// Liveness does not depend on it.
		if resp, _ := n.get(t, "/healthz"); resp.StatusCode != 200 {
			t.Fatalf("/healthz with Redis down: %d", resp.StatusCode)
		}
	})

	// The alert "a dependency is away" reads quotehub_dependency_up.
	t.Run("DependencyUpMetric", func(t *testing.T) {
		n := startNode(t, func(o *web.Options) {
			o.Checks = map[string]quotehub.HealthChecker{"redis": check(nil), "users": check(errors.New("down"))}
		})
		_, body := n.get(t, "/metrics")
		for _, want := range []string{`quotehub_dependency_up{dependency="redis"} 1`, `quotehub_dependency_up{dependency="users"} 0`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("NotReadyWhileDraining", func(t *testing.T) {
		n := startNode(t, nil)
		n.srv.Drain()
		resp, body := n.get(t, "/readyz")
		if want := `{"ready":false,"reasons":["node shutting down"]}`; resp.StatusCode != 503 || strings.TrimSpace(string(body)) != want {
			t.Fatalf("/readyz while draining: %d %s; want 503 %s", resp.StatusCode, body, want)
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		n := startNode(t, nil)
		n.get(t, "/healthz")
		n.get(t, "/healthz")
		n.get(t, "/v1/nope")
		resp, body := n.get(t, "/metrics")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{
			`quotehub_http_request_duration_seconds_count{code="200",route="/healthz"} 2`,
			`quotehub_http_request_duration_seconds_count{code="404",route="unmatched"} 1`,
		} {
			if !strings.Contains(string(body), want+"\n") {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("UnknownRoute", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/v1/nope")
		if msg := wantError(t, resp, body, 404, "not_found"); msg != "no such route: GET /v1/nope" {
			t.Errorf("message %q", msg)
		}
	})
}

// check is a dependency whose readiness is err.
func check(err error) quotehub.HealthChecker { return checker{err} }

type checker struct{ err error }

func (c checker) Ready(context.Context) error { return c.err }

// wsStatus dials the WebSocket endpoint with origin (none when empty) and
// returns the handshake's status; an accepted connection is closed at once.
func (n *node) wsStatus(t *testing.T, origin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws", &websocket.DialOptions{HTTPHeader: h, HTTPClient: n.client})
	if c != nil {
		c.CloseNow()
	}
	if resp == nil {
		t.Fatalf("dial with Origin %q: no response: %v", origin, err)
	}
	return resp.StatusCode
}

// TestWebSocketOrigin: a request without Origin (not a browser) and a
// browser on the node's own host are accepted; another origin is refused
// with 403 unless a pattern allows it (host patterns, and scheme://host
// patterns that also pin the scheme).
func TestWebSocketOrigin(t *testing.T) {
	n := startNode(t, func(o *web.Options) {
		o.AllowedOrigins = []string{"app.example.com", "https://*.example.org"}
	})
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + n.addr, http.StatusSwitchingProtocols},
		{"https://evil.example.net", http.StatusForbidden},
		{"http://127.0.0.1:1", http.StatusForbidden}, // the same address on another port is another origin
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"https://eu.example.org", http.StatusSwitchingProtocols},
		{"http://eu.example.org", http.StatusForbidden},
		{"https://app.example.com.evil.net", http.StatusForbidden},
	} {
		if got := n.wsStatus(t, tc.origin); got != tc.want {
			t.Errorf("Origin %q: handshake status %d, want %d", tc.origin, got, tc.want)
		}
	}
}

// TestCORS: reads grant an allowed origin (the node's own host or a
// pattern) and never a foreign one; every response to a browser varies on
// Origin.
func TestCORS(t *testing.T) {
	n := startNode(t, func(o *web.Options) { o.AllowedOrigins = []string{"https://app.example.com"} })
	if _, err := n.cache.Put(context.Background(), quote("KRW-BTC", 100, 1, 0)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/quotes/KRW-BTC", "/v1/quotes?symbols=KRW-BTC", "/v1/symbols?q=BTC"} {
		for _, tc := range []struct {
			origin string
			grant  bool
		}{
			{"https://app.example.com", true},
			{"http://" + n.addr, true},
			{"http://app.example.com", false}, // the pattern names the scheme
			{"https://evil.example.net", false},
			{"null", false},
		} {
			resp, _ := n.get(t, path, "Origin", tc.origin)
			got := resp.Header.Get("Access-Control-Allow-Origin")
			switch {
			case resp.StatusCode != 200:
				t.Errorf("%s from %s: status %d", path, tc.origin, resp.StatusCode)
			case tc.grant && got != tc.origin:
				t.Errorf("%s from allowed %s: Access-Control-Allow-Origin %q, want the origin", path, tc.origin, got)
			case !tc.grant && got != "":
				t.Errorf("%s from refused %s: Access-Control-Allow-Origin %q, want none", path, tc.origin, got)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
				t.Errorf("%s from %s: Vary %q, want Origin", path, tc.origin, resp.Header.Get("Vary"))
			}
		}
		if resp, _ := n.get(t, path); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s without Origin: a CORS grant", path)
		}
	}

	// A preflight never grants a refused origin.
	resp, _ := n.do(t, http.MethodOptions, "/v1/quotes/KRW-BTC",
		"Origin", "https://evil.example.net", "Access-Control-Request-Method", "GET")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" || resp.StatusCode >= 500 {
		t.Errorf("preflight from a refused origin: %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
	}
	t.Logf("preflight from a refused origin: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
}
