// Package upbit is quotehub's provider for the Upbit crypto exchange's
// public quotation API: it polls current prices with GET /v1/ticker (many
// markets per request), lists the catalogue with GET /v1/market/all, and
// streams tickers over Upbit's public WebSocket, so that the refresher can
// stop polling the symbols it follows.
//
// Symbols are Upbit market codes as they are, quote currency first:
// "KRW-BTC" is bitcoin priced in won, "USDT-ETH" ether priced in tether. A
// quote's currency is that prefix; crypto markets never close.
//
// Upbit measures quotation requests per IP (10 per second per group) and
// punishes excess with 429, then with a temporary 418 block. The provider
// therefore paces itself twice: a token bucket at Options.RatePerSecond,
// and the Remaining-Req header of every answer (when it says the second's
// budget is spent, the next request waits for the next second). A 429 or
// 418 becomes a *quotehub.Backoff, and later calls fail fast with one until
// its time has passed, so a blocked IP is not provoked further.
//
// Unknown markets come back in more than one way (404 "Code not found" for
// the whole request, 200 with an empty array, or simply fewer objects than
// asked for). The provider maps answers by their "market" field, never by
// position; when a whole multi-market request is refused it asks for each
// market alone, so that one delisted market never blacks out the others,
// and it remembers unknown markets for a while (Options.UnknownTTL) so the
// split is not paid on every fetch.
package upbit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"quotehub"
	"quotehub/internal/backoff"
)

// Name is the provider name reported by Provider.Name and in Quote.Source.
const Name = "upbit"

// Defaults of Options.
const (
	DefaultBaseURL       = "https://api.upbit.com"
	DefaultWSURL         = "wss://api.upbit.com/websocket/v1"
	DefaultTimeout       = 3 * time.Second
	DefaultMaxBatch      = 100
	DefaultRatePerSecond = 10
	DefaultPingEvery     = 60 * time.Second
	DefaultReconnectMin  = 500 * time.Millisecond
	DefaultReconnectMax  = 30 * time.Second
	DefaultUnknownTTL    = 10 * time.Minute
)

// maxBody bounds the size of a REST answer read into memory.
const maxBody = 8 << 20

// Options configure a Provider. The zero value talks to api.upbit.com with
// Upbit's documented limits.
type Options struct {
	// BaseURL is the REST base, without /v1; empty means
	// DefaultBaseURL (https://api.upbit.com). Regional hosts such as
	// https://sg-api.upbit.com use the same paths.
	BaseURL string

	// WSURL is the public WebSocket endpoint; empty means DefaultWSURL
	// (wss://api.upbit.com/websocket/v1).
	WSURL string

	// HTTPClient sends the REST requests and the WebSocket handshake; nil
	// means a client of the provider's own with dial, TLS and
	// response-header timeouts. Per-request deadlines come from Timeout,
	// so the client needs no Timeout of its own.
	HTTPClient *http.Client

	// Timeout bounds each REST request (headers and body), each WebSocket
	// handshake and each WebSocket write; zero or negative means
	// DefaultTimeout (3 s).
	Timeout time.Duration

	// MaxBatch is the most markets per /v1/ticker request and per Fetch;
	// zero or negative means DefaultMaxBatch (100). Upbit documents no
	// limit, but 100 per request has been observed, and longer URLs are
	// refused.
	MaxBatch int

	// RatePerSecond is the most REST requests per second per rate-limit
	// group (ticker, market), enforced with a token bucket that allows no
	// burst; zero or negative means DefaultRatePerSecond (10, Upbit's
	// quotation limit per IP). The Remaining-Req header paces further.
	RatePerSecond float64

	// Quotes are the quote currencies whose markets Catalog lists; empty
	// means ["KRW"].
	Quotes []string

	// UnknownTTL is how long a market that Upbit reported unknown when
	// asked for alone (404, or 200 with no ticker) is reported
	// unknown_symbol again without asking; zero means DefaultUnknownTTL
	// (10 min), negative disables the memory.
	UnknownTTL time.Duration

	// Logger receives warnings (malformed answers are sampled); nil means
	// no logging.
	Logger *zerolog.Logger

	// Now is the clock of the request pacing and of the backoff deadlines;
	// nil means time.Now. Waits always take real time.
	Now func() time.Time

	// PingEvery is how often the stream sends the text message PING (Upbit
	// closes a connection idle for 120 s, and answers PING with
	// {"status":"UP"}); zero or negative means DefaultPingEvery (60 s).
	// Values of 120 s or more are lowered to 100 s. A connection that
	// delivers nothing for two periods plus Timeout is dropped and
	// reopened.
	PingEvery time.Duration

	// ReconnectMin and ReconnectMax bound the stream's reconnection
	// backoff: the n-th consecutive failure waits a random time in
	// [0, min(ReconnectMax, ReconnectMin·2ⁿ)) ("full jitter"). Zero or
	// negative mean DefaultReconnectMin (500 ms) and DefaultReconnectMax
	// (30 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
}

// Provider is the Upbit quotehub.Provider and quotehub.Streamer. It is safe
// for concurrent use; create it with New.
type Provider struct {
	baseURL      string
	wsURL        string
	client       *http.Client
	timeout      time.Duration
	maxBatch     int
	quotes       []string
	unknownTTL   time.Duration
	log          zerolog.Logger
	sampled      zerolog.Logger
	now          func() time.Time
	pingEvery    time.Duration
	reconnectMin time.Duration
	reconnectMax time.Duration

	ticker *group // /v1/ticker
	market *group // /v1/market/all
	candle *group // /v1/candles/...

	banMu  sync.Mutex
	banned time.Time // a 418 blocks every group until then

	unknownMu sync.Mutex
	unknown   map[string]time.Time // market → when to ask again

	requests atomic.Int64 // REST requests sent (not handshakes); tests read it

	// stream state
	followMu  sync.Mutex
	follow    []string      // guarded by followMu; sorted, distinct
	followVer atomic.Uint64 // bumped by every change of follow
	wake      chan struct{} // capacity 1: the set changed
	upVer     atomic.Uint64 // followVer the live stream is subscribed to; 0 = down
	streaming atomic.Bool
}

var (
	_ quotehub.Provider = (*Provider)(nil)
	_ quotehub.Streamer = (*Provider)(nil)
)

// group is the client side of one Upbit rate-limit group.
type group struct {
	name string
	lim  *rate.Limiter

	mu      sync.Mutex
	paused  time.Time // Remaining-Req said sec=0: wait until then
	blocked time.Time // a 429: fail fast until then
}

// New returns a Provider configured by opts (see Options for defaults).
// It does not touch the network.
func New(opts Options) *Provider {
	p := &Provider{
		baseURL:      strings.TrimRight(opts.BaseURL, "/"),
		wsURL:        opts.WSURL,
		client:       opts.HTTPClient,
		timeout:      opts.Timeout,
		maxBatch:     opts.MaxBatch,
		quotes:       slices.Clone(opts.Quotes),
		unknownTTL:   opts.UnknownTTL,
		now:          opts.Now,
		pingEvery:    opts.PingEvery,
		reconnectMin: opts.ReconnectMin,
		reconnectMax: opts.ReconnectMax,
		unknown:      make(map[string]time.Time),
		wake:         make(chan struct{}, 1),
	}
	if p.baseURL == "" {
		p.baseURL = DefaultBaseURL
	}
	if p.wsURL == "" {
		p.wsURL = DefaultWSURL
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.client == nil {
		p.client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: p.timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   p.timeout,
			ResponseHeaderTimeout: 2 * p.timeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
			ForceAttemptHTTP2:     true,
		}}
	}
	if p.maxBatch <= 0 {
		p.maxBatch = DefaultMaxBatch
	}
	if len(p.quotes) == 0 {
		p.quotes = []string{"KRW"}
	}
	if p.unknownTTL == 0 {
		p.unknownTTL = DefaultUnknownTTL
	}
	if opts.Logger != nil {
		p.log = *opts.Logger
	} else {
		p.log = zerolog.Nop()
	}
	p.log = p.log.With().Str("provider", Name).Logger()
	p.sampled = p.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute})
	if p.now == nil {
		p.now = time.Now
	}
	if p.pingEvery <= 0 {
		p.pingEvery = DefaultPingEvery
	}
	if p.pingEvery >= 120*time.Second {
		p.pingEvery = 100 * time.Second
	}
	if p.reconnectMin <= 0 {
		p.reconnectMin = DefaultReconnectMin
	}
	if p.reconnectMax <= 0 {
		p.reconnectMax = DefaultReconnectMax
	}
	p.reconnectMax = max(p.reconnectMax, p.reconnectMin)
	rps := opts.RatePerSecond
	if !(rps > 0) || math.IsInf(rps, 0) {
		rps = DefaultRatePerSecond
	}
	p.ticker = &group{name: "ticker", lim: rate.NewLimiter(rate.Limit(rps), 1)}
	p.market = &group{name: "market", lim: rate.NewLimiter(rate.Limit(rps), 1)}
	p.candle = &group{name: "candle", lim: rate.NewLimiter(rate.Limit(rps), 1)}
	return p
}

// Name returns "upbit".
func (p *Provider) Name() string { return Name }

// MaxBatch returns the most symbols one Fetch accepts (Options.MaxBatch,
// default 100).
func (p *Provider) MaxBatch() int { return p.maxBatch }

// Fetch returns the current quotes of symbols (Upbit market codes such as
// "KRW-BTC") with one GET /v1/ticker, in request order, at most one per
// distinct symbol. It implements quotehub.Provider:
//
//   - more than MaxBatch symbols: no quotes and a too_many_symbols error;
//   - a 429, a 418, or a call while an earlier one's wait has not passed:
//     a *quotehub.Backoff whose error has code rate_limited;
//   - 5xx, timeouts, broken connections, cut or non-JSON bodies: an
//     upstream_unavailable error wrapping the cause;
//   - symbols Upbit does not know, and symbols that cannot be market
//     codes, get no quote and an unknown_symbol entry in a
//     quotehub.FetchErrors, while the others get their quotes;
//   - a ticker object that is malformed (no market or price, a price that
//     is not positive, a trade time in seconds) is dropped and logged; its
//     symbol gets an upstream_unavailable entry in the FetchErrors.
//
// Each quote has every field but Seq and FetchedAt set and passes
// Validate.
func (p *Provider) Fetch(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	if len(symbols) > p.maxBatch {
		return nil, quotehub.Errorf(quotehub.ETooManySymbols,
			"upbit: %d symbols in one fetch, at most %d", len(symbols), p.maxBatch)
	}
	ferrs := make(quotehub.FetchErrors)
	codes := make([]string, 0, len(symbols))
	seen := make(map[string]bool, len(symbols))
	for _, sym := range symbols {
		if seen[sym] {
			continue
		}
		seen[sym] = true
		switch {
		case !validCode(sym):
			ferrs[sym] = quotehub.Errorf(quotehub.EUnknownSymbol, "upbit: %q is not an Upbit market code", sym)
		case p.knownUnknown(sym):
			ferrs[sym] = unknownErr(sym)
		default:
			codes = append(codes, sym)
		}
	}
	var quotes []quotehub.Quote
	if len(codes) > 0 {
		var err error
		quotes, err = p.fetchBatch(ctx, codes, ferrs)
		if err != nil {
			return quotes, err
		}
	}
	if len(ferrs) > 0 {
		return quotes, ferrs
	}
	return quotes, nil
}

// fetchBatch asks for codes in one request and adds per-symbol failures to
// ferrs. An error is a failure of the whole batch.
func (p *Provider) fetchBatch(ctx context.Context, codes []string, ferrs quotehub.FetchErrors) ([]quotehub.Quote, error) {
	body, err := p.get(ctx, p.ticker, "/v1/ticker?markets="+strings.Join(codes, ","))
	if errors.Is(err, errNotFound) {
		if len(codes) > 1 {
			return p.split(ctx, codes, ferrs)
		}
		p.rememberUnknown(codes[0])
		ferrs[codes[0]] = unknownErr(codes[0])
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(body, &objs); err != nil {
		return nil, upstreamErr(err, "upbit: /v1/ticker answered malformed JSON")
	}
	want := make(map[string]bool, len(codes))
	for _, c := range codes {
		want[c] = true
	}
	got := make(map[string]quotehub.Quote, len(codes))
	bad := make(map[string]string)
	anonymous := 0
	for _, raw := range objs {
		var t tickerJSON
		if err := json.Unmarshal(raw, &t); err != nil {
			var m struct {
				Market string `json:"market"`
			}
			_ = json.Unmarshal(raw, &m) // best effort: only to name the market in the report
			if m.Market == "" {
				anonymous++
			} else if want[m.Market] {
				bad[m.Market] = "undecodable object: " + err.Error()
			}
			p.sampled.Warn().Str("market", m.Market).Err(err).Msg("upbit: dropped an undecodable ticker")
			continue
		}
		if t.Market == nil || *t.Market == "" {
			anonymous++
			p.sampled.Warn().Str("reason", "missing market").Msg("upbit: dropped a malformed ticker")
			continue
		}
		m := *t.Market
		if !want[m] {
			continue // not asked for, or a second object for the market
		}
		q, reason := toQuote(m, &t)
		if reason != "" {
			bad[m] = reason
			p.sampled.Warn().Str("market", m).Str("reason", reason).Msg("upbit: dropped a malformed ticker")
		} else {
			got[m] = q
		}
		want[m] = false
	}
	if len(got) == 0 && len(bad) == 0 && anonymous == 0 && len(codes) > 1 {
		// 200 [] for a whole batch: one unknown market may have emptied it.
		return p.split(ctx, codes, ferrs)
	}
	quotes := make([]quotehub.Quote, 0, len(got))
	for _, c := range codes {
		if q, ok := got[c]; ok {
			quotes = append(quotes, q)
			continue
		}
		switch reason, isBad := bad[c]; {
		case isBad:
			ferrs[c] = quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: malformed ticker for %s: %s", c, reason)
		case anonymous > 0:
			ferrs[c] = quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: no usable ticker for %s (the answer had objects without a market)", c)
		default:
			if len(codes) == 1 {
				// Asked alone: Upbit really does not know it. (Missing
				// from a bigger answer might be a glitch; not remembered.)
				p.rememberUnknown(c)
			}
			ferrs[c] = unknownErr(c)
		}
	}
	return quotes, nil
}

// split asks for each market of a refused batch alone (at most MaxBatch
// requests, each through the rate limiter). It stops at the first failure
// that is not about the market itself: a backoff is returned as is, with
// the quotes so far; any other error is given to the markets not yet asked.
func (p *Provider) split(ctx context.Context, codes []string, ferrs quotehub.FetchErrors) ([]quotehub.Quote, error) {
	if len(codes) > p.maxBatch {
		for _, c := range codes[p.maxBatch:] {
			ferrs[c] = quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: batch refused and too large to split")
		}
		codes = codes[:p.maxBatch]
	}
	p.log.Debug().Int("markets", len(codes)).Msg("upbit: batch refused; asking for each market alone")
	var quotes []quotehub.Quote
	for i := range codes {
		qs, err := p.fetchBatch(ctx, codes[i:i+1], ferrs)
		if err != nil {
			var bo *quotehub.Backoff
			if errors.As(err, &bo) {
				return quotes, err
			}
			for _, rest := range codes[i:] {
				ferrs[rest] = err
			}
			break
		}
		quotes = append(quotes, qs...)
	}
	return quotes, nil
}

// tickerJSON holds the fields of a REST ticker object or a WebSocket ticker
// message that quotes are made of. Pointers tell a missing field from a
// zero one.
type tickerJSON struct {
	Market            *string  `json:"market"`
	Code              *string  `json:"code"`
	TradePrice        *float64 `json:"trade_price"`
	PrevClosingPrice  *float64 `json:"prev_closing_price"`
	SignedChangePrice *float64 `json:"signed_change_price"`
	SignedChangeRate  *float64 `json:"signed_change_rate"`
	AccTradeVolume24h *float64 `json:"acc_trade_volume_24h"`
	TradeTimestamp    *float64 `json:"trade_timestamp"`
	StreamType        string   `json:"stream_type"`
}

// toQuote maps a ticker of market to a quote, or says why it cannot.
func toQuote(market string, t *tickerJSON) (quotehub.Quote, string) {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	currency, _, ok := strings.Cut(market, "-")
	switch {
	case !ok || currency == "":
		return quotehub.Quote{}, "market code has no quote currency"
	case t.TradePrice == nil:
		return quotehub.Quote{}, "missing trade_price"
	case !finite(*t.TradePrice) || *t.TradePrice <= 0:
		return quotehub.Quote{}, fmt.Sprintf("trade_price %v is not a positive number", *t.TradePrice)
	case t.TradeTimestamp == nil:
		return quotehub.Quote{}, "missing trade_timestamp"
	case *t.TradeTimestamp < 1e12:
		return quotehub.Quote{}, fmt.Sprintf("trade_timestamp %.0f looks like seconds, not milliseconds", *t.TradeTimestamp)
	case *t.TradeTimestamp >= 1e13:
		return quotehub.Quote{}, fmt.Sprintf("trade_timestamp %.0f is not Unix milliseconds", *t.TradeTimestamp)
	}
	q := quotehub.Quote{
		Symbol:    market,
		Price:     *t.TradePrice,
		Currency:  currency,
		TradeTime: int64(*t.TradeTimestamp),
		Source:    Name,
		Market:    quotehub.MarketOpen,
	}
	if v := t.PrevClosingPrice; v != nil && finite(*v) && *v > 0 {
		q.PrevClose, q.Has = *v, q.Has|quotehub.HasPrevClose
	}
	if v := t.SignedChangePrice; v != nil && finite(*v) {
		q.Change, q.Has = *v, q.Has|quotehub.HasChange
	}
	if v := t.SignedChangeRate; v != nil && finite(*v) {
		q.ChangeRate, q.Has = *v, q.Has|quotehub.HasChangeRate
	}
	if v := t.AccTradeVolume24h; v != nil && finite(*v) && *v >= 0 {
		q.Volume, q.Has = *v, q.Has|quotehub.HasVolume
	}
	if err := q.Validate(); err != nil {
		return quotehub.Quote{}, err.Error()
	}
	return q, ""
}

// Catalog lists the markets of /v1/market/all whose quote currency is one
// of Options.Quotes (KRW by default), sorted by symbol. Name is the Korean
// and the English name joined by a space, Exchange is
// quotehub.ExchangeUpbit and Currency the quote currency. Errors are as for
// Fetch.
func (p *Provider) Catalog(ctx context.Context) ([]quotehub.SymbolInfo, error) {
	body, err := p.get(ctx, p.market, "/v1/market/all")
	if errors.Is(err, errNotFound) {
		return nil, upstreamErr(err, "upbit: /v1/market/all answered 404")
	}
	if err != nil {
		return nil, err
	}
	var items []struct {
		Market      string `json:"market"`
		KoreanName  string `json:"korean_name"`
		EnglishName string `json:"english_name"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, upstreamErr(err, "upbit: /v1/market/all answered malformed JSON")
	}
	out := make([]quotehub.SymbolInfo, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		quote, _, _ := strings.Cut(it.Market, "-")
		if !validCode(it.Market) || seen[it.Market] || !slices.Contains(p.quotes, quote) {
			continue
		}
		seen[it.Market] = true
		name := strings.TrimSpace(strings.TrimSpace(it.KoreanName) + " " + strings.TrimSpace(it.EnglishName))
		if name == "" {
			name = it.Market
		}
		out = append(out, quotehub.SymbolInfo{Symbol: it.Market, Name: name, Exchange: quotehub.ExchangeUpbit, Currency: quote})
	}
	slices.SortFunc(out, func(a, b quotehub.SymbolInfo) int { return strings.Compare(a.Symbol, b.Symbol) })
	return out, nil
}

// validCode reports whether s can be an Upbit market code: two non-empty
// runs of A-Z and 0-9 joined by one '-'. Anything else could not be put in
// a markets list safely and is never a market.
func validCode(s string) bool {
	quote, base, ok := strings.Cut(s, "-")
	if !ok || quote == "" || base == "" || len(s) > quotehub.MaxSymbolLen {
		return false
	}
	for _, part := range [2]string{quote, base} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

func unknownErr(sym string) error {
	return quotehub.Errorf(quotehub.EUnknownSymbol, "upbit: unknown market %s", sym)
}

// upstreamErr is an upstream_unavailable error that wraps its cause.
func upstreamErr(cause error, format string, args ...any) error {
	return fmt.Errorf("%w: %w", quotehub.Errorf(quotehub.EUpstreamUnavailable, format, args...), cause)
}

// knownUnknown reports whether Upbit said recently that sym is unknown.
func (p *Provider) knownUnknown(sym string) bool {
	if p.unknownTTL < 0 {
		return false
	}
	p.unknownMu.Lock()
	defer p.unknownMu.Unlock()
	until, ok := p.unknown[sym]
	if ok && !p.now().Before(until) {
		delete(p.unknown, sym)
		return false
	}
	return ok
}

func (p *Provider) rememberUnknown(sym string) {
	if p.unknownTTL < 0 {
		return
	}
	now := p.now()
	p.unknownMu.Lock()
	defer p.unknownMu.Unlock()
	if len(p.unknown) > 10000 { // bounded: forget the expired ones
		for k, t := range p.unknown {
			if !now.Before(t) {
				delete(p.unknown, k)
			}
		}
	}
	p.unknown[sym] = now.Add(p.unknownTTL)
}

// errNotFound marks a 404 with Upbit's error envelope (an unknown market).
var errNotFound = errors.New("upbit: 404 Code not found")

// get sends one paced GET of path (with its query) in group g and returns
// the body of a 200. Every other answer is an error: errNotFound for a 404
// with Upbit's error envelope, a *quotehub.Backoff for 429 and 418, an
// upstream_unavailable error otherwise.
func (p *Provider) get(ctx context.Context, g *group, path string) ([]byte, error) {
	if err := p.admit(ctx, g); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.baseURL+path, nil)
	if err != nil {
		return nil, upstreamErr(err, "upbit: bad request URL")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "quotehub-upbit/1")
	p.requests.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, upstreamErr(err, "upbit: %s request failed", g.name)
	}
	defer resp.Body.Close()
	p.pace(g, resp.Header.Get("Remaining-Req"))
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))

	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		after := retryAfter(resp.Header.Get("Retry-After"), p.now())
		if after <= 0 {
			after = time.Second
		}
		p.block(g, after)
		p.log.Warn().Str("group", g.name).Dur("after", after).Msg("upbit: rate limited (429)")
		return nil, &quotehub.Backoff{
			Err:   quotehub.Errorf(quotehub.ERateLimited, "upbit: too many %s requests (HTTP 429)", g.name),
			After: after,
		}
	case http.StatusTeapot:
		after := retryAfter(resp.Header.Get("Retry-After"), p.now())
		if after <= 0 {
			after = blockTimeInBody(body)
		}
		if after <= 0 {
			after = 60 * time.Second
		}
		p.banMu.Lock()
		p.banned = later(p.banned, p.now().Add(after))
		p.banMu.Unlock()
		p.log.Warn().Dur("after", after).Msg("upbit: temporarily blocked (418)")
		return nil, &quotehub.Backoff{
			Err:   quotehub.Errorf(quotehub.ERateLimited, "upbit: temporarily blocked for too many requests (HTTP 418)"),
			After: after,
		}
	}
	if rerr != nil {
		return nil, upstreamErr(rerr, "upbit: reading the %s answer (HTTP %d) failed", g.name, resp.StatusCode)
	}
	if len(body) > maxBody {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: %s answer larger than %d bytes", g.name, maxBody)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusNotFound && isErrorEnvelope(body):
		return nil, errNotFound
	case resp.StatusCode >= 500:
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: HTTP %d from %s", resp.StatusCode, g.name)
	default:
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "upbit: HTTP %d from %s: %s",
			resp.StatusCode, g.name, errorMessage(body))
	}
}

// admit waits until a request of group g may be sent: it fails fast with a
// Backoff while a 418 or 429 wait runs, waits out a spent second
// (Remaining-Req sec=0), then takes a token from the rate limiter.
func (p *Provider) admit(ctx context.Context, g *group) error {
	for {
		now := p.now()
		p.banMu.Lock()
		banned := p.banned
		p.banMu.Unlock()
		if now.Before(banned) {
			return &quotehub.Backoff{
				Err:   quotehub.Errorf(quotehub.ERateLimited, "upbit: temporarily blocked (HTTP 418); not asking before the block ends"),
				After: banned.Sub(now),
			}
		}
		g.mu.Lock()
		blocked, paused := g.blocked, g.paused
		g.mu.Unlock()
		if now.Before(blocked) {
			return &quotehub.Backoff{
				Err:   quotehub.Errorf(quotehub.ERateLimited, "upbit: %s requests rate limited (HTTP 429); not asking again yet", g.name),
				After: blocked.Sub(now),
			}
		}
		if now.Before(paused) {
			if err := backoff.Sleep(ctx, paused.Sub(now)); err != nil {
				return upstreamErr(err, "upbit: gave up waiting for the %s request budget", g.name)
			}
			continue
		}
		r := g.lim.Reserve()
		d := r.Delay()
		if d > 0 {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				r.Cancel()
				return &quotehub.Backoff{
					Err:   quotehub.Errorf(quotehub.ERateLimited, "upbit: %s request budget exhausted", g.name),
					After: d,
				}
			}
			if err := backoff.Sleep(ctx, d); err != nil {
				r.Cancel()
				return upstreamErr(err, "upbit: gave up waiting for the %s request budget", g.name)
			}
		}
		g.mu.Lock()
		paused = g.paused
		g.mu.Unlock()
		if !p.now().Before(paused) {
			return nil
		}
	}
}

// pace reads a Remaining-Req header: when it says the second's budget of
// the group is spent, requests of g wait for the next second. A missing or
// unreadable header changes nothing.
func (p *Provider) pace(g *group, header string) {
	sec, ok := remainingSec(header)
	if !ok || sec > 0 {
		return
	}
	now := p.now()
	next := now.Truncate(time.Second).Add(time.Second + 5*time.Millisecond)
	g.mu.Lock()
	g.paused = later(g.paused, next)
	g.mu.Unlock()
}

// block makes requests of g fail fast for d.
func (p *Provider) block(g *group, d time.Duration) {
	until := p.now().Add(d)
	g.mu.Lock()
	g.blocked = later(g.blocked, until)
	g.mu.Unlock()
}

// remainingSec returns the sec= field of a Remaining-Req header such as
// "group=ticker; min=600; sec=9". ok is false when the header is missing
// or has no readable sec field.
func remainingSec(header string) (sec int, ok bool) {
	for part := range strings.SplitSeq(header, ";") {
		k, v, found := strings.Cut(part, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "sec") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// maxWait caps waits read from an answer, against absurd values.
const maxWait = time.Hour

// retryAfter parses a Retry-After header (delay in seconds, or an HTTP
// date); zero means none.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if !(n > 0) {
			return 0
		}
		d = time.Duration(min(n, maxWait.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxWait)
}

// blockTime finds a duration such as "60 seconds", "30s", "5분" in a 418
// body.
var blockTime = regexp.MustCompile(`(\d+(?:\.\d+)?)\s*(seconds|second|secs|sec|s|초|minutes|minute|mins|min|m|분)`)

// blockTimeInBody reads the block duration that a 418 body carries (Upbit
// documents that it does, not how), from the error message or the raw
// text; zero means none found.
func blockTimeInBody(body []byte) time.Duration {
	text := errorMessage(body)
	for _, m := range blockTime.FindAllStringSubmatchIndex(text, -1) {
		if end := m[1]; end < len(text) && isASCIILetter(text[end]) {
			continue // "5 steps", "10 messages"
		}
		n, err := strconv.ParseFloat(text[m[2]:m[3]], 64)
		if err != nil || !(n > 0) {
			continue
		}
		unit := time.Second
		switch text[m[4]:m[5]] {
		case "minutes", "minute", "mins", "min", "m", "분":
			unit = time.Minute
		}
		return min(time.Duration(n*float64(unit)), maxWait)
	}
	return 0
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// errorEnvelope is Upbit's error body. name is a number on the quotation
// API and a string on the exchange API, so it stays raw.
type errorEnvelope struct {
	Error *struct {
		Name    json.RawMessage `json:"name"`
		Message string          `json:"message"`
	} `json:"error"`
}

func isErrorEnvelope(body []byte) bool {
	var e errorEnvelope
	return json.Unmarshal(body, &e) == nil && e.Error != nil
}

// errorMessage returns the message of an error envelope, else the start of
// the body as text.
func errorMessage(body []byte) string {
	var e errorEnvelope
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		return e.Error.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
