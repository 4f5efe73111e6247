// Package upbittest is a fake Upbit quotation API for tests: an
// httptest-based server on a real loopback socket that speaks the REST
// endpoints (/v1/ticker, /v1/ticker/all, /v1/market/all) and the public
// WebSocket (/websocket/v1) the way Upbit does, including its limits and its
// failures, so that the upbit provider and other packages' end-to-end tests
// can run without the internet.
//
// What it reproduces, faithfully and on demand:
//
//   - real-shaped payloads: the default market table (50 KRW markets and a
//     few BTC- and USDT- ones) and every market's starting ticker come from
//     the embedded testdata; KRW-BTC and KRW-ETH start exactly as Upbit's
//     documented example. Prices move by a tick or two on every request and
//     every WebSocket tick, deterministically for a seed (Options.Frozen
//     keeps them still);
//   - the per-second request budget of each group (ticker, market) with the
//     Remaining-Req header counting down, 429 once the budget of the current
//     second is spent, and a 418 block after repeated 429s;
//   - unknown markets answered with 404 {"error":{"name":404,...}} or with
//     200 [] (Options.Unknown), and a mix of known and unknown markets
//     answered as a whole failure or with the known markets only
//     (Options.Mixed);
//   - run-time faults: an outage (503 with an HTML body), latency, a body
//     cut mid-JSON, a connection reset without a response, malformed ticker
//     objects, and WebSocket connections dropped in the middle of a frame;
//   - the WebSocket protocol: a JSON-array subscription that replaces the
//     previous one, a SNAPSHOT message per code and then REALTIME messages,
//     binary frames by default, PING answered with {"status":"UP"}, error
//     messages with a string name, and a close after an idle period;
//     on demand, connections that go silent (SetSilent).
//
// Counters (Requests, TickerRequests, Status, WSConnections, ...) let tests
// assert what reached the "upstream". Every knob and counter is safe for
// concurrent use.
package upbittest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"quotehub/internal/backoff"
)

// UnknownMode is how the fake answers a /v1/ticker request whose markets
// are all unknown.
type UnknownMode int

const (
	// Unknown404 answers 404 {"error":{"name":404,"message":"Code not
	// found"}}, the documented and most commonly observed behaviour (the
	// default).
	Unknown404 UnknownMode = iota
	// UnknownEmpty answers 200 with an empty array, as observed by some
	// clients.
	UnknownEmpty
)

// MixedMode is how the fake answers a /v1/ticker request that mixes known
// and unknown markets (Upbit does not document it).
type MixedMode int

const (
	// MixedWhole answers as if every market were unknown (per UnknownMode):
	// one delisted code fails the whole request (the default).
	MixedWhole MixedMode = iota
	// MixedKnownOnly answers 200 with the known markets only.
	MixedKnownOnly
)

// Options configure a Server. The zero value is a usable, realistic fake.
type Options struct {
	// Markets is the market table; nil means DefaultMarkets(). A custom
	// market starts at its Price with no change against the previous close.
	Markets []Market

	// Seed seeds the deterministic price walk; zero means 1.
	Seed uint64

	// Frozen keeps every price and timestamp as loaded, so that payloads are
	// exactly the recorded ones (KRW-BTC and KRW-ETH are then Upbit's
	// documented example). False, the default, moves prices on every
	// request and WebSocket tick.
	Frozen bool

	// Now is the clock of trade timestamps; nil means time.Now. Rate limits
	// and bans run on LimitNow, idle timeouts always on the real clock.
	Now func() time.Time

	// LimitNow is the clock of the per-second budgets and of bans; nil
	// means time.Now. A test that stops it keeps every request in one
	// budget second.
	LimitNow func() time.Time

	// PerSecond is the request budget of each group (ticker, market) per
	// wall-clock second, as counted down in Remaining-Req; zero or negative
	// means 10, Upbit's quotation limit. See also SetBudget.
	PerSecond int

	// BanAfter is how many 429s within BanWindow get the client blocked
	// with 418; zero or negative means 10.
	BanAfter int
	// BanWindow is the window over which 429s are counted; zero or negative
	// means 10 s.
	BanWindow time.Duration
	// BanFor is how long a block lasts; zero or negative means 60 s. See
	// also Ban.
	BanFor time.Duration
	// RetryAfterHeader adds a Retry-After header (whole seconds) to 429 and
	// 418 answers. Upbit documents none, so false is the default.
	RetryAfterHeader bool
	// RetryAfter is the wait a 429's Retry-After header asks for, rounded
	// up to whole seconds; zero or negative means 1 s. A 418's header
	// always gives what is left of the block.
	RetryAfter time.Duration
	// BanTimeInBody writes the block time into the 418 body's message
	// ("... blocked for 60 seconds"). Upbit documents that the body carries
	// it but not how, so false, the default, writes a message without it.
	BanTimeInBody bool

	// Unknown is the answer to a request whose markets are all unknown
	// (default Unknown404).
	Unknown UnknownMode
	// Mixed is the answer to a request mixing known and unknown markets
	// (default MixedWhole).
	Mixed MixedMode
	// MaxMarkets, when positive, answers at most that many markets per
	// /v1/ticker request, silently dropping the rest (as observed in 2021
	// with 100). Zero, the default, answers every market.
	MaxMarkets int

	// TickEvery is the period of REALTIME WebSocket messages (one per
	// subscribed code per period); zero or negative means 200 ms.
	TickEvery time.Duration
	// TextFrames sends WebSocket messages as text frames; false, the
	// default, sends binary frames carrying UTF-8 JSON as Upbit does.
	TextFrames bool
	// IdleTimeout closes a WebSocket connection after that long without a
	// message in either direction; zero or negative means 120 s, Upbit's
	// value.
	IdleTimeout time.Duration
}

// Server is a running fake Upbit. Create it with New and stop it with
// Close.
type Server struct {
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc

	seed          uint64
	frozen        bool
	now           func() time.Time
	limitNow      func() time.Time
	banAfter      int
	banWindow     time.Duration
	banFor        time.Duration
	retryAfter    bool
	retryAfter429 string // the 429's Retry-After value
	banTimeInBody bool
	maxMarkets    int
	tickEvery     time.Duration
	textFrames    bool
	idleTimeout   time.Duration

	mu        sync.Mutex // guards the fields below
	markets   []*mstate
	byCode    map[string]*mstate
	buckets   map[string]*bucket
	recent429 []time.Time
	banned    time.Time
	conns     map[*wsConn]struct{}
	closed    bool
	lastSub   []string
	statuses  map[int]int64

	wg sync.WaitGroup // WebSocket handlers

	budget     atomic.Int64
	unknown    atomic.Int32
	mixed      atomic.Int32
	down       atomic.Bool
	latency    atomic.Int64
	truncate   atomic.Bool
	reset      atomic.Bool
	failSubs   atomic.Int64
	silent     atomic.Bool
	requests   atomic.Int64
	tickerReqs atomic.Int64
	marketsReq atomic.Int64
	candleReqs atomic.Int64
	wsConns    atomic.Int64
	subs       atomic.Int64
	pings      atomic.Int64
}

// bucket counts one group's requests in one wall-clock second.
type bucket struct {
	sec  int64
	used int
}

// New starts a fake Upbit on a loopback port.
func New(opts Options) *Server {
	s := &Server{
		seed:          opts.Seed,
		frozen:        opts.Frozen,
		now:           opts.Now,
		limitNow:      opts.LimitNow,
		banAfter:      opts.BanAfter,
		banWindow:     opts.BanWindow,
		banFor:        opts.BanFor,
		retryAfter:    opts.RetryAfterHeader,
		retryAfter429: strconv.FormatInt(max(int64(math.Ceil(opts.RetryAfter.Seconds())), 1), 10),
		banTimeInBody: opts.BanTimeInBody,
		maxMarkets:    opts.MaxMarkets,
		tickEvery:     opts.TickEvery,
		textFrames:    opts.TextFrames,
		idleTimeout:   opts.IdleTimeout,
		byCode:        make(map[string]*mstate),
		buckets:       make(map[string]*bucket),
		conns:         make(map[*wsConn]struct{}),
		statuses:      make(map[int]int64),
	}
	if s.seed == 0 {
		s.seed = 1
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limitNow == nil {
		s.limitNow = time.Now
	}
	if s.banAfter <= 0 {
		s.banAfter = 10
	}
	if s.banWindow <= 0 {
		s.banWindow = 10 * time.Second
	}
	if s.banFor <= 0 {
		s.banFor = 60 * time.Second
	}
	if s.tickEvery <= 0 {
		s.tickEvery = 200 * time.Millisecond
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = 120 * time.Second
	}
	s.SetBudget(opts.PerSecond)
	if opts.PerSecond <= 0 {
		s.SetBudget(10)
	}
	s.unknown.Store(int32(opts.Unknown))
	s.mixed.Store(int32(opts.Mixed))

	if opts.Markets == nil {
		s.markets = defaultStates()
	} else {
		now := s.now()
		for _, m := range opts.Markets {
			s.markets = append(s.markets, newState(m, now))
		}
	}
	for _, st := range s.markets {
		if _, dup := s.byCode[st.info.Code]; !dup {
			s.byCode[st.info.Code] = st
		}
	}

	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ticker", func(w http.ResponseWriter, r *http.Request) {
		s.serveREST(w, r, "ticker", s.ticker)
	})
	mux.HandleFunc("GET /v1/ticker/all", func(w http.ResponseWriter, r *http.Request) {
		s.serveREST(w, r, "ticker", s.tickerAll)
	})
	mux.HandleFunc("GET /v1/market/all", func(w http.ResponseWriter, r *http.Request) {
		s.serveREST(w, r, "market", s.marketAll)
	})
	s.serveCandles(mux)
	mux.HandleFunc("/websocket/v1", s.serveWS)
	s.srv = httptest.NewUnstartedServer(mux)
	// Every request's context ends with Close, so that no handler holds
	// Close up.
	s.srv.Config.BaseContext = func(net.Listener) context.Context { return s.ctx }
	s.srv.Start()
	return s
}

// URL returns the REST base URL (the equivalent of https://api.upbit.com),
// for upbit.Options.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// WSURL returns the WebSocket URL (the equivalent of
// wss://api.upbit.com/websocket/v1), for upbit.Options.WSURL.
func (s *Server) WSURL() string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/websocket/v1"
}

// Close drops every WebSocket connection, waits for their goroutines and
// shuts the server down. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, c := range conns {
		c.c.CloseNow()
	}
	s.wg.Wait()
	s.srv.Close()
}

// SetBudget sets the per-second request budget of each group; zero or
// negative makes every request a 429 (which counts towards a 418 block).
func (s *Server) SetBudget(n int) { s.budget.Store(int64(max(n, 0))) }

// Ban blocks every REST request with 418 for d from now, as if the client
// had been caught sending too many 429s; zero or negative lifts a block.
func (s *Server) Ban(d time.Duration) {
	s.mu.Lock()
	s.banned = s.limitNow().Add(d)
	s.recent429 = nil
	s.mu.Unlock()
}

// SetUnknown changes how unknown markets are answered (see Options.Unknown
// and Options.Mixed).
func (s *Server) SetUnknown(all UnknownMode, mixed MixedMode) {
	s.unknown.Store(int32(all))
	s.mixed.Store(int32(mixed))
}

// SetDown starts or ends an outage: while down, REST requests get 503 with
// an HTML maintenance page and WebSocket handshakes are refused with 503.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// SetLatency delays every later REST response by d (zero or negative: no
// delay). A client that gives up first is not answered.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// SetTruncate makes 200 responses declare their full Content-Length, send
// half of the body and close the connection: a body cut mid-JSON.
func (s *Server) SetTruncate(on bool) { s.truncate.Store(on) }

// SetReset makes REST requests end with the TCP connection closed (reset)
// before any response. Go's HTTP client may retry such a request once on a
// fresh connection, so one client call can count as two Requests.
func (s *Server) SetReset(on bool) { s.reset.Store(on) }

// SetMalformed breaks the ticker object of market in REST answers and
// WebSocket messages in the given way; WellFormed repairs it. Unknown
// markets are ignored.
func (s *Server) SetMalformed(market string, kind Malformed) {
	s.mu.Lock()
	if st := s.byCode[market]; st != nil {
		st.malformed = kind
	}
	s.mu.Unlock()
}

// Delist takes market off the exchange (delisted true) or lists it again
// (false). A delisted market is unknown to /v1/ticker, missing from
// /v1/market/all and /v1/ticker/all, and gets no WebSocket messages.
func (s *Server) Delist(market string, delisted bool) {
	s.mu.Lock()
	if st := s.byCode[market]; st != nil {
		st.delisted = delisted
	}
	s.mu.Unlock()
}

// FailSubscriptions answers the next n WebSocket subscription messages
// with {"error":{"name":"WRONG_FORMAT",...}} instead of serving them.
func (s *Server) FailSubscriptions(n int) { s.failSubs.Store(int64(max(n, 0))) }

// SetSilent makes every WebSocket connection, open or future, send nothing
// at all (no snapshots, ticks, PING answers or errors) while it keeps
// reading: a half-dead connection that a client must detect by itself.
func (s *Server) SetSilent(on bool) { s.silent.Store(on) }

// DropStream breaks every open WebSocket connection in the middle of a
// message: it writes the header and half the payload of a frame, then
// closes the TCP connection.
func (s *Server) DropStream() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
}

// Requests returns the number of REST requests received (WebSocket
// handshakes excluded), whatever their outcome.
func (s *Server) Requests() int64 { return s.requests.Load() }

// TickerRequests returns the number of /v1/ticker requests received.
func (s *Server) TickerRequests() int64 { return s.tickerReqs.Load() }

// MarketsRequested returns the total number of market codes named by the
// /v1/ticker requests that got past the faults and limits.
func (s *Server) MarketsRequested() int64 { return s.marketsReq.Load() }

// Status returns how many REST responses had HTTP status code; status 0
// counts connections reset without a response (SetReset).
func (s *Server) Status(code int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[code]
}

// WSConnections returns the number of WebSocket connections accepted.
func (s *Server) WSConnections() int64 { return s.wsConns.Load() }

// OpenStreams returns the number of WebSocket connections open now.
func (s *Server) OpenStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Subscriptions returns the number of WebSocket subscription messages
// accepted (rejected ones are not counted).
func (s *Server) Subscriptions() int64 { return s.subs.Load() }

// LastSubscription returns the ticker codes of the latest accepted
// subscription on any connection, in the order sent.
func (s *Server) LastSubscription() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lastSub)
}

// Pings returns the number of "PING" text messages received.
func (s *Server) Pings() int64 { return s.pings.Load() }

// count records a response status.
func (s *Server) count(code int) {
	s.mu.Lock()
	s.statuses[code]++
	s.mu.Unlock()
}

// serveREST runs the faults and limits common to every REST endpoint, then
// h, and writes its answer.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request, group string, h func(*http.Request) (int, []byte)) {
	s.requests.Add(1)
	if d := time.Duration(s.latency.Load()); d > 0 {
		if backoff.Sleep(r.Context(), d) != nil { // ends with the request or Close
			return
		}
	}
	if s.reset.Load() {
		s.count(0)
		resetConn(w)
		return
	}
	if s.down.Load() {
		s.count(http.StatusServiceUnavailable)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><head><title>503 Service Temporarily Unavailable</title></head>"+
			"<body><h1>Upbit is under maintenance</h1></body></html>\n")
		return
	}

	now := s.limitNow()
	s.mu.Lock()
	if now.Before(s.banned) {
		left := s.banned.Sub(now)
		s.statuses[http.StatusTeapot]++
		s.mu.Unlock()
		secs := int64(math.Ceil(left.Seconds()))
		if s.retryAfter {
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		msg := "Too many requests. Access is temporarily blocked."
		if s.banTimeInBody {
			msg = fmt.Sprintf("Too many requests. Access is blocked for %d seconds.", secs)
		}
		writeJSON(w, http.StatusTeapot, errorBody(http.StatusTeapot, msg))
		return
	}
	b := s.buckets[group]
	if b == nil {
		b = &bucket{}
		s.buckets[group] = b
	}
	if sec := now.Unix(); b.sec != sec {
		b.sec, b.used = sec, 0
	}
	budget := int(s.budget.Load())
	if b.used >= budget {
		s.recent429 = append(s.recent429, now)
		for len(s.recent429) > 0 && now.Sub(s.recent429[0]) > s.banWindow {
			s.recent429 = s.recent429[1:]
		}
		if len(s.recent429) >= s.banAfter {
			s.banned = now.Add(s.banFor)
			s.recent429 = nil
		}
		s.statuses[http.StatusTooManyRequests]++
		s.mu.Unlock()
		w.Header().Set("Remaining-Req", fmt.Sprintf("group=%s; min=600; sec=0", group))
		if s.retryAfter {
			w.Header().Set("Retry-After", s.retryAfter429)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, "Too Many Requests")
		return
	}
	b.used++
	remaining := budget - b.used
	s.mu.Unlock()

	status, body := h(r)
	s.count(status)
	w.Header().Set("Remaining-Req", fmt.Sprintf("group=%s; min=600; sec=%d", group, remaining))
	w.Header().Set("Limit-By-Ip", "Yes")
	if status == http.StatusOK && s.truncate.Load() {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body[:len(body)/2])
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	writeJSON(w, status, body)
}

// resetConn closes the request's TCP connection with a reset and no
// response.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// errorBody is Upbit's quotation error envelope, with a numeric name.
func errorBody(status int, msg string) []byte {
	type body struct {
		Name    int    `json:"name"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(map[string]body{"error": {status, msg}})
	return b
}

// ticker answers GET /v1/ticker?markets=A,B,C.
func (s *Server) ticker(r *http.Request) (int, []byte) {
	s.tickerReqs.Add(1)
	q := r.URL.Query()
	if !q.Has("markets") {
		return http.StatusBadRequest, errorBody(400, "Missing request parameter error. Check the required parameters!")
	}
	codes := strings.Split(q.Get("markets"), ",")
	s.marketsReq.Add(int64(len(codes)))
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(codes))
	unknown := 0
	for _, c := range codes {
		c = strings.TrimSpace(c)
		if st := s.byCode[c]; st != nil && !st.delisted {
			want[c] = true
		} else {
			unknown++
		}
	}
	if len(want) == 0 || (unknown > 0 && MixedMode(s.mixed.Load()) == MixedWhole) {
		if UnknownMode(s.unknown.Load()) == UnknownEmpty {
			return http.StatusOK, []byte("[]")
		}
		return http.StatusNotFound, errorBody(404, "Code not found")
	}
	now := s.now()
	out := make([]json.RawMessage, 0, len(want))
	for _, st := range s.markets { // table order, not request order
		if !want[st.info.Code] || (s.maxMarkets > 0 && len(out) == s.maxMarkets) {
			continue
		}
		want[st.info.Code] = false
		if !s.frozen {
			st.step(s.seed, now)
		}
		out = append(out, st.restJSON())
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

// tickerAll answers GET /v1/ticker/all?quote_currencies=KRW,BTC (every
// listed market when the parameter is missing).
func (s *Server) tickerAll(r *http.Request) (int, []byte) {
	s.tickerReqs.Add(1)
	q := r.URL.Query()
	param := q.Get("quote_currencies")
	if param == "" {
		param = q.Get("quoteCurrencies")
	}
	var quotes []string
	if param != "" {
		quotes = strings.Split(param, ",")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := []json.RawMessage{}
	for _, st := range s.markets {
		quote, _, _ := strings.Cut(st.info.Code, "-")
		if st.delisted || (quotes != nil && !slices.Contains(quotes, quote)) {
			continue
		}
		if !s.frozen {
			st.step(s.seed, now)
		}
		out = append(out, st.restJSON())
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

// marketAll answers GET /v1/market/all[?is_details=true].
func (s *Server) marketAll(r *http.Request) (int, []byte) {
	q := r.URL.Query()
	details := q.Get("is_details") == "true" || q.Get("isDetails") == "true"
	type caution struct {
		PriceFluctuations            bool `json:"PRICE_FLUCTUATIONS"`
		TradingVolumeSoaring         bool `json:"TRADING_VOLUME_SOARING"`
		DepositAmountSoaring         bool `json:"DEPOSIT_AMOUNT_SOARING"`
		GlobalPriceDifferences       bool `json:"GLOBAL_PRICE_DIFFERENCES"`
		ConcentrationOfSmallAccounts bool `json:"CONCENTRATION_OF_SMALL_ACCOUNTS"`
	}
	type event struct {
		Warning bool    `json:"warning"`
		Caution caution `json:"caution"`
	}
	type item struct {
		marketJSON
		MarketEvent *event `json:"market_event,omitempty"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []item{}
	for _, st := range s.markets {
		if st.delisted {
			continue
		}
		it := item{marketJSON: marketJSON{Market: st.info.Code, KoreanName: st.info.KoreanName, EnglishName: st.info.EnglishName}}
		if details {
			it.MarketEvent = &event{}
		}
		out = append(out, it)
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

// hijackRecorder keeps the net.Conn that websocket.Accept hijacks, so that
// DropStream can write a broken frame under the library.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack implements http.Hijacker.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}
