// Package yahoo is a quotehub.Provider for Yahoo Finance's unofficial v8
// chart API (GET /v8/finance/chart/{symbol}), which quotes US and Korean
// (.KS, .KQ) stocks among others.
//
// The chart API answers one symbol per request, so one Fetch of a batch
// becomes one HTTP request per symbol. The requests of every Fetch share one
// rate limiter and one bound on requests in flight, so the load on Yahoo is
// bounded however many batches the refresher runs at once. Yahoo publishes
// no quota and throttles by IP and User-Agent; a 429 stops the rest of the
// batch and is reported as a *quotehub.Backoff, so the caller (and a circuit
// breaker in front of this provider) waits before asking again.
//
// Failures are reported per symbol with a quotehub.FetchErrors: a 404 is an
// unknown_symbol, a 429 a rate_limited, and everything else that keeps a
// symbol from a valid quote (401, 5xx, timeouts, broken connections,
// truncated or non-JSON bodies, malformed payloads) an upstream_unavailable.
// When no symbol of a batch got a quote and none was unknown, Fetch returns
// one plain error instead, so that the batch counts as a failed call.
package yahoo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"quotehub"
)

// Name is the provider name reported by Provider.Name and in Quote.Source.
const Name = "yahoo"

// Defaults of Options.
const (
	DefaultBaseURL       = "https://query1.finance.yahoo.com"
	DefaultTimeout       = 3 * time.Second
	DefaultRatePerSecond = 5
	DefaultConcurrency   = 4
	DefaultMaxBatch      = 20
	// DefaultUserAgent is a current desktop Chrome. Yahoo answers 429 to
	// requests without a User-Agent or with an outdated one, so this string
	// should be refreshed from time to time.
	DefaultUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " +
		"(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
	// DefaultRetryAfter is how long a 429 without a usable Retry-After
	// header asks the caller to wait.
	DefaultRetryAfter = 2 * time.Second
)

// maxBody bounds the size of a chart response read into memory; a
// range=1d chart is a few kilobytes.
const maxBody = 1 << 20

// Options configure a Provider. The zero value is a usable configuration
// that talks to Yahoo itself.
type Options struct {
	// BaseURL is the scheme and host of the chart API, without a trailing
	// path. Empty means DefaultBaseURL (https://query1.finance.yahoo.com);
	// tests point it at a yahootest.Server.
	BaseURL string

	// HTTPClient sends the requests. Nil means a client of the provider's
	// own, whose transport keeps up to Concurrency idle connections to the
	// host. Per-request deadlines come from Timeout, so the client needs no
	// Timeout of its own.
	HTTPClient *http.Client

	// Timeout bounds one HTTP request, from sending it to reading the whole
	// body. Zero or negative means DefaultTimeout (3 s). The caller's
	// context can end a request sooner.
	Timeout time.Duration

	// RatePerSecond is the most requests per second this provider sends,
	// summed over all concurrent Fetch calls (the chart API costs one
	// request per symbol). The limiter's burst is 1, so within any
	// one-second window at most RatePerSecond+1 requests start. Zero or
	// negative means DefaultRatePerSecond (5).
	RatePerSecond float64

	// Concurrency is the most requests in flight at once, summed over all
	// concurrent Fetch calls. Zero or negative means DefaultConcurrency (4).
	Concurrency int

	// MaxBatch is the most symbols one Fetch accepts. Zero or negative means
	// DefaultMaxBatch (20).
	MaxBatch int

	// UserAgent is sent with every request. Empty means DefaultUserAgent, a
	// current desktop browser: Yahoo throttles unknown clients.
	UserAgent string

	// Logger receives the (sampled) reasons why payloads were dropped. Nil
	// means no logging.
	Logger *zerolog.Logger

	// Now is the clock used to decide whether a market is open. Nil means
	// time.Now.
	Now func() time.Time
}

// Provider is a quotehub.Provider backed by the Yahoo Finance chart API. It
// is safe for concurrent use; create it with New.
type Provider struct {
	base      string
	client    *http.Client
	ownClient bool
	timeout   time.Duration
	limiter   *rate.Limiter
	sem       chan struct{}
	maxBatch  int
	userAgent string
	warn      zerolog.Logger
	now       func() time.Time

	requests atomic.Int64 // HTTP requests sent; tests read it
}

var _ quotehub.Provider = (*Provider)(nil)

// New returns a Provider configured by opts (see Options for defaults).
func New(opts Options) *Provider {
	p := &Provider{
		base:      strings.TrimRight(opts.BaseURL, "/"),
		client:    opts.HTTPClient,
		timeout:   opts.Timeout,
		maxBatch:  opts.MaxBatch,
		userAgent: opts.UserAgent,
		now:       opts.Now,
	}
	if p.base == "" {
		p.base = DefaultBaseURL
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxBatch <= 0 {
		p.maxBatch = DefaultMaxBatch
	}
	if p.userAgent == "" {
		p.userAgent = DefaultUserAgent
	}
	if p.now == nil {
		p.now = time.Now
	}
	perSecond := opts.RatePerSecond
	if !(perSecond > 0) {
		perSecond = DefaultRatePerSecond
	}
	// Burst 1: requests are spaced evenly, never sent in a clump after a
	// quiet spell, which is what per-second quotas punish.
	p.limiter = rate.NewLimiter(rate.Limit(perSecond), 1)
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	p.sem = make(chan struct{}, conc)
	if p.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = conc
		p.client = &http.Client{Transport: t}
		p.ownClient = true
	}
	logger := zerolog.Nop()
	if opts.Logger != nil {
		logger = opts.Logger.With().Str("provider", Name).Logger()
	}
	p.warn = logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	return p
}

// Name returns "yahoo".
func (p *Provider) Name() string { return Name }

// MaxBatch returns the most symbols one Fetch accepts (Options.MaxBatch,
// default 20). Each symbol still costs its own HTTP request.
func (p *Provider) MaxBatch() int { return p.maxBatch }

// CloseIdleConnections closes the idle keep-alive connections of the
// provider's own HTTP client; it does nothing when Options.HTTPClient was
// given. Call it when the provider is no longer used.
func (p *Provider) CloseIdleConnections() {
	if p.ownClient {
		p.client.CloseIdleConnections()
	}
}

// outcome is the result of one symbol's request.
type outcome struct {
	quote      quotehub.Quote
	err        error         // nil when quote is set
	retryAfter time.Duration // > 0 when the upstream answered 429
}

// Fetch returns the current quotes of symbols, in request order, at most one
// per distinct symbol. It implements quotehub.Provider:
//
//   - more than MaxBatch symbols: no quotes and a too_many_symbols error;
//   - each symbol is one GET /v8/finance/chart/{symbol}, sent through the
//     provider's rate limiter and concurrency bound (waiting on either ends
//     with ctx);
//   - the symbols that got no quote are reported in a quotehub.FetchErrors
//     (unknown_symbol for a 404, rate_limited for a 429,
//     upstream_unavailable for the rest), next to the quotes of the others;
//   - once a request gets a 429, the requests of the batch not yet sent are
//     dropped and Fetch returns a *quotehub.Backoff (After from Retry-After,
//     else 2 s) wrapping a rate_limited *quotehub.Error and the FetchErrors,
//     plus the quotes it did get;
//   - when no symbol got a quote and none was unknown, Fetch returns no
//     quotes and one plain *quotehub.Error (rate_limited when every symbol
//     was held back by the rate limiter, upstream_unavailable otherwise), a
//     whole-batch failure that circuit breakers count.
//
// Each quote has every field but Seq and FetchedAt set and passes Validate.
func (p *Provider) Fetch(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	if len(symbols) > p.maxBatch {
		return nil, quotehub.Errorf(quotehub.ETooManySymbols,
			"yahoo: %d symbols in one fetch, at most %d", len(symbols), p.maxBatch)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	syms := dedupe(symbols)
	if len(syms) == 0 {
		return nil, nil
	}

	// stop ends the waits of requests not yet sent once one request got a
	// 429; requests already sent finish on ctx alone.
	waitCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg      sync.WaitGroup
		limited atomic.Bool
		results = make([]outcome, len(syms))
	)
	for i, sym := range syms {
		wg.Go(func() { results[i] = p.fetchOne(ctx, waitCtx, stop, sym, &limited) })
	}
	wg.Wait()
	return p.collect(syms, results)
}

// collect turns the per-symbol outcomes of a batch into Fetch's result.
func (p *Provider) collect(syms []string, results []outcome) ([]quotehub.Quote, error) {
	quotes := make([]quotehub.Quote, 0, len(syms))
	var (
		ferrs          quotehub.FetchErrors
		retryAfter     time.Duration
		unknown, local int
	)
	for i, r := range results {
		if r.err == nil {
			quotes = append(quotes, r.quote)
			continue
		}
		if ferrs == nil {
			ferrs = make(quotehub.FetchErrors)
		}
		ferrs[syms[i]] = r.err
		retryAfter = max(retryAfter, r.retryAfter)
		switch quotehub.ErrorCode(r.err) {
		case quotehub.EUnknownSymbol:
			unknown++
		case quotehub.ERateLimited:
			local++
		}
	}
	switch {
	case retryAfter > 0:
		return quotes, &quotehub.Backoff{
			Err: fmt.Errorf("%w: %w",
				quotehub.Errorf(quotehub.ERateLimited, "yahoo: too many requests"), ferrs),
			After: retryAfter,
		}
	case ferrs == nil:
		return quotes, nil
	case len(quotes) == 0 && unknown == 0 && local == len(syms):
		return nil, quotehub.Errorf(quotehub.ERateLimited,
			"yahoo: the request budget could not serve any of %d symbols in time", len(syms))
	case len(quotes) == 0 && unknown == 0:
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable,
			"yahoo: all %d symbols failed (%s)", len(syms), quotehub.ErrorMessage(ferrs[syms[0]]))
	default:
		return quotes, ferrs
	}
}

// fetchOne sends the request of one symbol once the concurrency bound and
// the rate limiter allow it, unless waitCtx ends first. A 429 sets limited
// and calls stop before the request's concurrency slot is released, so no
// request of the batch starts after it.
func (p *Provider) fetchOne(ctx, waitCtx context.Context, stop func(), sym string, limited *atomic.Bool) outcome {
	select {
	case p.sem <- struct{}{}:
	case <-waitCtx.Done():
		return p.notSent(ctx, sym, limited)
	}
	defer func() { <-p.sem }()
	if err := p.limiter.Wait(waitCtx); err != nil {
		if waitCtx.Err() == nil {
			// The limiter's next slot is after ctx's deadline.
			return outcome{err: quotehub.Errorf(quotehub.ERateLimited,
				"yahoo: %s: no request slot before the deadline", sym)}
		}
		return p.notSent(ctx, sym, limited)
	}
	if limited.Load() {
		return p.notSent(ctx, sym, limited)
	}
	o := p.get(ctx, sym)
	if o.retryAfter > 0 && !limited.Swap(true) {
		stop()
	}
	return o
}

// notSent is the outcome of a request that was never sent because the
// batch was rate limited or ctx ended.
func (p *Provider) notSent(ctx context.Context, sym string, limited *atomic.Bool) outcome {
	if limited.Load() {
		return outcome{err: quotehub.Errorf(quotehub.ERateLimited,
			"yahoo: %s: not requested, the batch was rate limited", sym)}
	}
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.Canceled
	}
	return outcome{err: unavailable(sym, "not requested", cause)}
}

// unavailable returns an upstream_unavailable error about sym that also
// unwraps to cause (a context or network error), so callers can tell a
// timeout from a refused connection. The protocol message stays short and
// free of upstream URLs; the cause carries the details.
func unavailable(sym, what string, cause error) error {
	reason := "connection failed"
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		reason = "timed out"
	case errors.Is(cause, context.Canceled):
		reason = "canceled"
	case errors.Is(cause, io.ErrUnexpectedEOF), errors.Is(cause, io.EOF):
		reason = "connection closed early"
	}
	return fmt.Errorf("%w: %w",
		quotehub.Errorf(quotehub.EUpstreamUnavailable, "yahoo: %s: %s: %s", sym, what, reason), cause)
}

// get sends one chart request and maps its answer.
func (p *Provider) get(ctx context.Context, sym string) outcome {
	// range=1d makes chartPreviousClose the close of the session before
	// today's (the bar before the first bar of the range), so the fallback
	// for a null previousClose is still yesterday's close; with a longer
	// range it would be the close before the range, days or weeks old.
	// interval=1d keeps the payload to a single bar.
	body, o := p.request(ctx, sym, "range=1d&interval=1d")
	if o.err != nil {
		return o
	}
	q, err := p.parse(sym, body)
	if err != nil {
		var bad *malformed
		if errors.As(err, &bad) {
			p.warn.Warn().Str("symbol", sym).Str("reason", bad.reason).Msg("dropping malformed quote")
			return outcome{err: quotehub.Errorf(quotehub.EUpstreamUnavailable,
				"yahoo: %s: malformed payload: %s", sym, bad.reason)}
		}
		return outcome{err: err}
	}
	return outcome{quote: q}
}

// request sends one chart request of sym with query and returns the body
// of a 200; any other answer is the outcome's error (with retryAfter for a
// 429). A 422 (a range Yahoo does not keep at that interval) is
// errNoData.
func (p *Provider) request(ctx context.Context, sym, query string) ([]byte, outcome) {
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	u := p.base + "/v8/finance/chart/" + url.PathEscape(yahooSymbol(sym)) + "?" + query
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, outcome{err: fmt.Errorf("yahoo: %s: building the request: %w", sym, err)}
	}
	req.Header.Set("User-Agent", p.userAgent)
	req.Header.Set("Accept", "application/json")
	p.requests.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, outcome{err: unavailable(sym, "request failed", err)}
	}
	defer resp.Body.Close()
	// The status decides before the body: a 429 is plain text, and 5xx
	// pages from Yahoo's edge are HTML.
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		drain(resp.Body)
		return nil, outcome{
			err:        quotehub.Errorf(quotehub.ERateLimited, "yahoo: %s: 429 too many requests", sym),
			retryAfter: retryAfter(resp.Header.Get("Retry-After"), p.now()),
		}
	case resp.StatusCode == http.StatusNotFound:
		// The body is normally the chart envelope with code "Not Found";
		// any 404 of the chart path means Yahoo has no such symbol.
		drain(resp.Body)
		return nil, outcome{err: quotehub.Errorf(quotehub.EUnknownSymbol, "yahoo: unknown symbol %q", sym)}
	case resp.StatusCode == http.StatusUnprocessableEntity:
		drain(resp.Body)
		return nil, outcome{err: errNoData}
	case resp.StatusCode != http.StatusOK:
		drain(resp.Body)
		return nil, outcome{err: quotehub.Errorf(quotehub.EUpstreamUnavailable,
			"yahoo: %s: HTTP %d", sym, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return nil, outcome{err: unavailable(sym, "reading the body", err)}
	case len(body) > maxBody:
		return nil, outcome{err: quotehub.Errorf(quotehub.EUpstreamUnavailable,
			"yahoo: %s: body larger than %d bytes", sym, maxBody)}
	}
	return body, outcome{}
}

// drain reads a little of an unused body so the connection can be reused.
func drain(body io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10)) }

// retryAfter parses a Retry-After header (delay seconds or an HTTP date)
// and falls back to DefaultRetryAfter when it is absent or unusable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return DefaultRetryAfter
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s > 0 {
			return time.Duration(s) * time.Second
		}
		return DefaultRetryAfter
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return DefaultRetryAfter
}

// yahooSymbol is Yahoo's ticker of sym. FX pairs are named FX:AAABBB in
// the catalogue (units of BBB per AAA) and AAABBB=X on Yahoo, except
// against the dollar, where Yahoo drops the USD: FX:USDKRW is KRW=X.
func yahooSymbol(sym string) string {
	pair, ok := strings.CutPrefix(sym, "FX:")
	if !ok || len(pair) != 6 {
		return sym
	}
	if base, quote := pair[:3], pair[3:]; base == "USD" {
		return quote + "=X"
	}
	return pair + "=X"
}

// dedupe returns symbols without repeats, in first-seen order.
func dedupe(symbols []string) []string {
	seen := make(map[string]struct{}, len(symbols))
	out := make([]string, 0, len(symbols))
	for _, s := range symbols {
		if _, dup := seen[s]; dup {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	return out
}
