// Package resilient wraps a quotehub.Provider with the defences every
// upstream needs: a timeout per attempt, retries with exponential backoff
// and full jitter for failures that may pass, and a circuit breaker that
// stops calling an upstream that keeps failing or asked to be left alone.
//
// Only failures of the upstream as a whole are retried (upstream_unavailable
// and errors without a domain code, such as timeouts and reset
// connections). An unknown symbol, a partial result that has quotes, and a
// rate limit are final: retrying them would not help, and retrying a rate
// limit would make it worse.
//
// The breaker counts whole calls, after their retries. It opens after
// FailureThreshold consecutive failed calls (a rate limit counts), and at
// once, for at least Backoff.After, when the upstream returns a
// *quotehub.Backoff. While it is open every call fails at once with an
// upstream_unavailable "circuit open" error that wraps ErrOpen, and nothing
// reaches the upstream. When the open period ends, one call at a time is
// let through as a probe (without retries; other callers still fail fast):
// its success closes the breaker, its failure opens it again for twice the
// previous period, up to MaxOpenFor.
//
// Wrap the providers in cmd, where the wiring is:
//
//	w := resilient.Wrap(yahoo.New(yahoo.Options{}), resilient.Options{Metrics: m})
//	src := refresher.Source{Provider: w.AsProvider()}
//
// AsProvider keeps the inner provider's quotehub.Streamer capability, which
// the concrete *Provider cannot carry.
package resilient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/internal/backoff"
)

// Defaults of Options.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultRetries          = 2
	DefaultBaseDelay        = 100 * time.Millisecond
	DefaultMaxDelay         = 2 * time.Second
	DefaultFailureThreshold = 5
	DefaultOpenFor          = 10 * time.Second
	DefaultMaxOpenFor       = 2 * time.Minute
)

// States of the circuit breaker, as passed to Options.OnStateChange.
const (
	StateClosed   = "closed"
	StateOpen     = "open"
	StateHalfOpen = "half_open"
)

// ErrOpen is the error of a call refused because the breaker is open (or
// half-open with its probe in flight). Calls return it wrapped with the
// provider's name; test for it with errors.Is. Its code is
// upstream_unavailable.
var ErrOpen = &quotehub.Error{Code: quotehub.EUpstreamUnavailable, Message: "circuit open"}

// Options configure a Provider. Zero values take the documented defaults.
type Options struct {
	// Timeout bounds each attempt: the inner Fetch gets a context that ends
	// after Timeout or with the caller's, whichever comes first. Zero or
	// negative means DefaultTimeout (5 s).
	Timeout time.Duration

	// Retries is how many times a call that failed retryably is attempted
	// again. Zero means DefaultRetries (2, so at most three attempts);
	// negative means no retries.
	Retries int

	// BaseDelay and MaxDelay shape the wait before retry n (n = 0 for the
	// first retry): a uniformly random duration in
	// [0, min(MaxDelay, BaseDelay·2^n)) ("full jitter"), so that callers
	// that failed together do not retry together. Zero or negative means
	// DefaultBaseDelay (100 ms) and DefaultMaxDelay (2 s). A wait that
	// would reach past the caller's deadline is not started: the call
	// returns the last error instead.
	BaseDelay time.Duration
	MaxDelay  time.Duration

	// FailureThreshold is how many consecutive failed calls open the
	// breaker. Zero or negative means DefaultFailureThreshold (5).
	FailureThreshold int

	// OpenFor is how long the breaker stays open before it lets a probe
	// through; each failed probe doubles it, up to MaxOpenFor, and a
	// successful probe resets it. Zero or negative means DefaultOpenFor
	// (10 s) and DefaultMaxOpenFor (2 min); MaxOpenFor below OpenFor means
	// OpenFor.
	OpenFor    time.Duration
	MaxOpenFor time.Duration

	// OnStateChange, when set, is called after each change of the breaker's
	// state with the provider's name and the states (StateClosed,
	// StateOpen, StateHalfOpen). Calls come in the order of the changes,
	// one at a time, from a goroutine that is calling Fetch, without
	// holding the provider's lock: the hook may call the provider. It
	// should return quickly, since that caller waits for it.
	OnStateChange func(provider, from, to string)

	// OnRetry, when set, is called before each retry with the provider's
	// name, the retry number (0 for the first), the wait before it and the
	// error that caused it. For logs and tests.
	OnRetry func(provider string, retry int, delay time.Duration, err error)

	// Metrics receive the breaker's state, its transitions and the
	// retries. Nil means unregistered collectors of the provider's own.
	// Several providers may share one Metrics: every series carries the
	// provider's name.
	Metrics *Metrics

	// Logger receives breaker transitions. Nil means no logging.
	Logger *zerolog.Logger

	// Rand returns uniform random numbers in [0, 1) for the jitter. Nil
	// means math/rand/v2's Float64. It is called concurrently.
	Rand func() float64

	// Now is the clock of the breaker's open periods. Nil means time.Now.
	// Retry waits and attempt timeouts always use real timers.
	Now func() time.Time
}

// Provider is a quotehub.Provider that adds timeouts, retries and a circuit
// breaker to another. It is safe for concurrent use; create it with Wrap.
// It does not implement quotehub.Streamer even when the inner provider
// does: use AsProvider for a value that keeps that capability.
type Provider struct {
	inner quotehub.Provider
	name  string
	opts  Options
	log   zerolog.Logger

	mu        sync.Mutex
	state     string
	failures  int           // consecutive failed calls while closed
	openFor   time.Duration // length of the next threshold or probe opening
	openUntil time.Time
	probing   bool // a half-open probe is in flight

	pending   []transition // not yet passed to OnStateChange
	notifying bool         // a goroutine is delivering pending
}

var _ quotehub.Provider = (*Provider)(nil)

// Wrap returns p with the defences configured by opts (see Options for
// defaults). The breaker starts closed.
func Wrap(p quotehub.Provider, opts Options) *Provider {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.BaseDelay, DefaultBaseDelay)
	def(&opts.MaxDelay, DefaultMaxDelay)
	def(&opts.OpenFor, DefaultOpenFor)
	def(&opts.MaxOpenFor, DefaultMaxOpenFor)
	opts.MaxOpenFor = max(opts.MaxOpenFor, opts.OpenFor)
	switch {
	case opts.Retries == 0:
		opts.Retries = DefaultRetries
	case opts.Retries < 0:
		opts.Retries = 0
	}
	if opts.FailureThreshold <= 0 {
		opts.FailureThreshold = DefaultFailureThreshold
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Provider{inner: p, name: p.Name(), opts: opts, state: StateClosed, openFor: opts.OpenFor}
	w.log = zerolog.Nop()
	if opts.Logger != nil {
		w.log = opts.Logger.With().Str("provider", w.name).Logger()
	}
	opts.Metrics.BreakerState.WithLabelValues(w.name).Set(stateValue(StateClosed))
	return w
}

// Name returns the inner provider's name, so quotes and metrics keep it.
func (w *Provider) Name() string { return w.name }

// Unwrap returns the wrapped provider, so that optional capabilities of
// it (quotehub.Seeder) can be found through the wrapper.
func (w *Provider) Unwrap() quotehub.Provider { return w.inner }

// The refresher finds a Seeder behind the wrapper through Unwrap.
var _ interface{ Unwrap() quotehub.Provider } = (*Provider)(nil)

// MaxBatch returns the inner provider's MaxBatch.
func (w *Provider) MaxBatch() int { return w.inner.MaxBatch() }

// AsProvider returns w as a quotehub.Provider that implements
// quotehub.Streamer exactly when the inner provider does (a
// *StreamProvider then, w itself otherwise).
func (w *Provider) AsProvider() quotehub.Provider {
	if s, ok := w.inner.(quotehub.Streamer); ok {
		return &StreamProvider{Provider: w, streamer: s}
	}
	return w
}

// Fetch implements quotehub.Provider. It fails fast with an error wrapping
// ErrOpen while the breaker refuses calls; otherwise it calls the inner
// provider under the attempt timeout, retries retryable failures while the
// caller's context and the breaker allow, records the outcome in the
// breaker and returns the last attempt's result unchanged.
func (w *Provider) Fetch(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	probe, err := w.admit()
	if err != nil {
		return nil, err
	}
	retries := w.opts.Retries
	if probe {
		retries = 0 // a probe tests the upstream once; it does not insist
	}
	var (
		quotes []quotehub.Quote
		v      verdict
		after  time.Duration
	)
	for retry := 0; ; retry++ {
		quotes, err = w.attempt(ctx, symbols)
		v, after = classify(ctx, quotes, err)
		if v != failure || retry >= retries || ctx.Err() != nil || (!probe && w.refusing()) {
			break
		}
		delay := backoff.Delay(retry, w.opts.BaseDelay, w.opts.MaxDelay, w.opts.Rand)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= delay {
			break // the wait would outlast the caller: give up now
		}
		w.opts.Metrics.Retries.WithLabelValues(w.name).Inc()
		if w.opts.OnRetry != nil {
			w.opts.OnRetry(w.name, retry, delay, err)
		}
		if backoff.Sleep(ctx, delay) != nil {
			break
		}
	}
	w.record(probe, v, after)
	return quotes, err
}

// attempt is one call of the inner provider under the attempt timeout.
func (w *Provider) attempt(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	actx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	return w.inner.Fetch(actx, symbols)
}

// verdict is what a call's result means to the breaker and to retries.
type verdict int

const (
	// success: the upstream answered (also with unknown symbols, or a
	// partial result).
	success verdict = iota
	// failure: the upstream failed as a whole and may recover at once;
	// counted and retried.
	failure
	// refusal: the upstream refused to serve (rate limit, Backoff);
	// counted, never retried.
	refusal
	// neutral: the caller's doing (canceled context, bad arguments);
	// neither counted nor retried.
	neutral
)

// classify judges the result of one attempt; after is the wait a Backoff
// asked for.
func classify(ctx context.Context, quotes []quotehub.Quote, err error) (v verdict, after time.Duration) {
	if err == nil {
		return success, 0
	}
	var bo *quotehub.Backoff
	if errors.As(err, &bo) {
		return refusal, bo.After
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return neutral, 0
	}
	var fe quotehub.FetchErrors
	if errors.As(err, &fe) {
		if len(quotes) > 0 {
			return success, 0
		}
		// No quote at all: a failure only when every symbol failed for
		// the upstream's sake.
		v := failure
		for _, e := range fe {
			switch quotehub.ErrorCode(e) {
			case quotehub.EUpstreamUnavailable, quotehub.EInternal:
			case quotehub.ERateLimited:
				v = max(v, refusal)
			default:
				return success, 0
			}
		}
		return v, 0
	}
	switch quotehub.ErrorCode(err) {
	case quotehub.EUpstreamUnavailable, quotehub.EInternal:
		return failure, 0
	case quotehub.ERateLimited:
		return refusal, 0
	case quotehub.EUnknownSymbol:
		return success, 0
	default:
		return neutral, 0
	}
}

// transition is one change of state, reported after the lock is released.
type transition struct{ from, to string }

// admit decides whether a call may go through; probe is true for the one
// call let through by a half-open breaker.
func (w *Provider) admit() (probe bool, err error) {
	w.mu.Lock()
	ts := w.advance(w.opts.Now())
	switch {
	case w.state == StateClosed:
	case w.state == StateHalfOpen && !w.probing:
		w.probing, probe = true, true
	default:
		err = fmt.Errorf("%s: %w", w.name, ErrOpen)
	}
	w.unlockAndNotify(ts)
	return probe, err
}

// refusing reports whether the breaker refuses calls now (it opened while
// a call was retrying). It does not change the state.
func (w *Provider) refusing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state != StateClosed
}

// record enters the outcome of a call in the breaker.
func (w *Provider) record(probe bool, v verdict, after time.Duration) {
	w.mu.Lock()
	now := w.opts.Now()
	var ts []transition
	switch {
	case probe:
		w.probing = false
		switch v {
		case success:
			w.failures, w.openFor = 0, w.opts.OpenFor
			ts = w.set(StateClosed, ts)
		case failure, refusal:
			w.openFor = min(2*w.openFor, w.opts.MaxOpenFor)
			w.openUntil = now.Add(max(w.openFor, after))
			ts = w.set(StateOpen, ts)
		}
	case w.state == StateClosed:
		switch v {
		case success:
			w.failures = 0
		case failure, refusal:
			w.failures++
			var d time.Duration
			if w.failures >= w.opts.FailureThreshold {
				d = w.openFor
			}
			if d = max(d, after); d > 0 {
				w.failures = 0
				w.openUntil = now.Add(d)
				ts = w.set(StateOpen, ts)
			}
		}
	case w.state == StateOpen && after > 0:
		// A call that started before the breaker opened was told to
		// wait: honour the longer of the two waits.
		if until := now.Add(after); until.After(w.openUntil) {
			w.openUntil = until
		}
	}
	w.unlockAndNotify(ts)
}

// advance turns an open breaker whose period has ended half-open. The
// caller holds mu.
func (w *Provider) advance(now time.Time) []transition {
	if w.state == StateOpen && !now.Before(w.openUntil) {
		return w.set(StateHalfOpen, nil)
	}
	return nil
}

// set changes the state, updates the metrics and queues the transition
// for the hook. The caller holds mu.
func (w *Provider) set(to string, ts []transition) []transition {
	from := w.state
	if from == to {
		return ts
	}
	w.state = to
	m := w.opts.Metrics
	m.BreakerState.WithLabelValues(w.name).Set(stateValue(to))
	m.Transitions.WithLabelValues(w.name, to).Inc()
	ev := w.log.Info()
	if to == StateOpen {
		ev = w.log.Warn().Time("until", w.openUntil)
	}
	ev.Str("from", from).Str("to", to).Msg("circuit breaker state changed")
	return append(ts, transition{from, to})
}

// unlockAndNotify queues ts for OnStateChange, releases mu, and delivers
// the queue unless another goroutine is already delivering it (that one
// then delivers ts too). Transitions are queued under mu, so they are
// delivered in order and one at a time, and hooks run without mu held, so
// a hook may call Fetch.
func (w *Provider) unlockAndNotify(ts []transition) {
	if w.opts.OnStateChange == nil {
		w.mu.Unlock()
		return
	}
	w.pending = append(w.pending, ts...)
	if w.notifying || len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	w.notifying = true
	for len(w.pending) > 0 {
		batch := w.pending
		w.pending = nil
		w.mu.Unlock()
		for _, t := range batch {
			w.opts.OnStateChange(w.name, t.from, t.to)
		}
		w.mu.Lock()
	}
	w.notifying = false
	w.mu.Unlock()
}

// StreamProvider is what AsProvider returns for an inner provider that is
// a quotehub.Streamer: the wrapped Provider (Fetch goes through the
// breaker) plus the inner provider's Stream, Follow and Connected, passed
// through unchanged. The stream reconnects with its own backoff; the
// refresher polls through Fetch, and so through the breaker, while the
// stream is down.
type StreamProvider struct {
	*Provider
	streamer quotehub.Streamer
}

var (
	_ quotehub.Provider = (*StreamProvider)(nil)
	_ quotehub.Streamer = (*StreamProvider)(nil)
)

// Stream calls the inner provider's Stream.
func (s *StreamProvider) Stream(ctx context.Context, emit func([]quotehub.Quote)) error {
	return s.streamer.Stream(ctx, emit)
}

// Follow calls the inner provider's Follow.
func (s *StreamProvider) Follow(symbols []string) { s.streamer.Follow(symbols) }

// Connected calls the inner provider's Connected.
func (s *StreamProvider) Connected() bool { return s.streamer.Connected() }
