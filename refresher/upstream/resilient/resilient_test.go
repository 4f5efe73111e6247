package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/refresher/upstream/resilient"
	"quotehub/refresher/upstream/yahoo"
	"quotehub/refresher/upstream/yahoo/yahootest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a provider whose Fetch is a function of the call number (from 1).
type fake struct {
	calls atomic.Int64
	fetch func(ctx context.Context, call int64, symbols []string) ([]quotehub.Quote, error)
}

func (f *fake) Name() string  { return "fake" }
func (f *fake) MaxBatch() int { return 7 }
func (f *fake) Fetch(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	return f.fetch(ctx, f.calls.Add(1), symbols)
}

// streamingFake is a fake that is also a quotehub.Streamer.
type streamingFake struct {
	fake
	mu       sync.Mutex
	followed []string
	streamed atomic.Bool
}

func (s *streamingFake) Stream(ctx context.Context, emit func([]quotehub.Quote)) error {
	s.streamed.Store(true)
	emit([]quotehub.Quote{quote("S")})
	return ctx.Err()
}

func (s *streamingFake) Follow(symbols []string) {
	s.mu.Lock()
	s.followed = slices.Clone(symbols)
	s.mu.Unlock()
}

func (s *streamingFake) Connected() bool { return true }

// quote is a valid quote of sym.
func quote(sym string) quotehub.Quote {
	return quotehub.Quote{Symbol: sym, Price: 1, Currency: "USD", TradeTime: 1749664800000,
		Source: "fake", Market: quotehub.MarketOpen}
}

func quotes(symbols []string) []quotehub.Quote {
	qs := make([]quotehub.Quote, len(symbols))
	for i, s := range symbols {
		qs[i] = quote(s)
	}
	return qs
}

var (
	errDown    = quotehub.Errorf(quotehub.EUpstreamUnavailable, "down")
	errUnknown = quotehub.Errorf(quotehub.EUnknownSymbol, "unknown")
	errLimited = quotehub.Errorf(quotehub.ERateLimited, "slow down")
)

// ok answers every call with quotes.
func ok(_ context.Context, _ int64, s []string) ([]quotehub.Quote, error) { return quotes(s), nil }

// failing answers every call with errDown.
func failing(context.Context, int64, []string) ([]quotehub.Quote, error) { return nil, errDown }

// clock is a fake clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 6, 11, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var syms = []string{"AAPL", "MSFT"}

// breakerOpts are options for breaker tests: no retries, the fake clock.
func breakerOpts(c *clock) resilient.Options {
	return resilient.Options{Retries: -1, FailureThreshold: 3, OpenFor: time.Second, MaxOpenFor: 3 * time.Second, Now: c.Now}
}

func wantState(t *testing.T, w *resilient.Provider, want string) {
	t.Helper()
	if got := w.State(); got != want {
		t.Fatalf("state %q, want %q", got, want)
	}
}

// wantOpenError checks a fail-fast answer of an open breaker.
func wantOpenError(t *testing.T, qs []quotehub.Quote, err error) {
	t.Helper()
	if !errors.Is(err, resilient.ErrOpen) || quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable ||
		!strings.Contains(err.Error(), "circuit open") || len(qs) != 0 {
		t.Fatalf("got %d quotes, error %v; want a fail-fast circuit open", len(qs), err)
	}
}

func TestWrapForwards(t *testing.T) {
	f := &fake{fetch: ok}
	w := resilient.Wrap(f, resilient.Options{})
	if w.Name() != "fake" || w.MaxBatch() != 7 || w.Unwrap() != f {
		t.Fatalf("Name %q, MaxBatch %d", w.Name(), w.MaxBatch())
	}
	qs, err := w.Fetch(context.Background(), syms)
	if err != nil || len(qs) != 2 || f.calls.Load() != 1 {
		t.Fatalf("Fetch: %v %v", qs, err)
	}
	wantState(t, w, resilient.StateClosed)
}

func TestRetryThenSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"UpstreamUnavailable", errDown},
		{"NonDomainError", io.ErrUnexpectedEOF},
		{"AttemptTimeout", context.DeadlineExceeded},
		{"AllSymbolsUnavailable", quotehub.FetchErrors{"AAPL": errDown, "MSFT": errDown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{fetch: func(_ context.Context, call int64, s []string) ([]quotehub.Quote, error) {
				if call < 3 {
					return nil, tc.err
				}
				return quotes(s), nil
			}}
			m := resilient.NewMetrics(nil)
			w := resilient.Wrap(f, resilient.Options{BaseDelay: time.Millisecond, Metrics: m})
			qs, err := w.Fetch(context.Background(), syms)
			if err != nil || len(qs) != 2 {
				t.Fatalf("Fetch: %v %v", qs, err)
			}
			if n := f.calls.Load(); n != 3 {
				t.Fatalf("%d attempts, want 3", n)
			}
			if n := testutil.ToFloat64(m.Retries.WithLabelValues("fake")); n != 2 {
				t.Fatalf("retries metric %v, want 2", n)
			}
			wantState(t, w, resilient.StateClosed)
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	f := &fake{fetch: func(_ context.Context, call int64, _ []string) ([]quotehub.Quote, error) {
		return nil, quotehub.Errorf(quotehub.EUpstreamUnavailable, "attempt %d", call)
	}}
	w := resilient.Wrap(f, resilient.Options{BaseDelay: time.Millisecond})
	_, err := w.Fetch(context.Background(), syms)
	if f.calls.Load() != 1+resilient.DefaultRetries || quotehub.ErrorMessage(err) != "attempt 3" {
		t.Fatalf("%d attempts, error %v; want 3 attempts and the last error", f.calls.Load(), err)
	}

	none := &fake{fetch: failing}
	w = resilient.Wrap(none, resilient.Options{Retries: -1})
	if _, err := w.Fetch(context.Background(), syms); err != errDown || none.calls.Load() != 1 {
		t.Fatalf("Retries -1: %d attempts, %v", none.calls.Load(), err)
	}
}

func TestNoRetry(t *testing.T) {
	partial := func(_ context.Context, _ int64, s []string) ([]quotehub.Quote, error) {
		return quotes(s[:1]), quotehub.FetchErrors{s[1]: errDown}
	}
	for _, tc := range []struct {
		name  string
		fetch func(context.Context, int64, []string) ([]quotehub.Quote, error)
	}{
		{"UnknownSymbol", func(context.Context, int64, []string) ([]quotehub.Quote, error) { return nil, errUnknown }},
		{"AllSymbolsUnknown", func(context.Context, int64, []string) ([]quotehub.Quote, error) {
			return nil, quotehub.FetchErrors{"AAPL": errUnknown, "MSFT": errDown}
		}},
		{"Partial", partial},
		{"RateLimited", func(context.Context, int64, []string) ([]quotehub.Quote, error) { return nil, errLimited }},
		{"Backoff", func(context.Context, int64, []string) ([]quotehub.Quote, error) {
			return nil, &quotehub.Backoff{Err: errLimited, After: time.Millisecond}
		}},
		{"TooManySymbols", func(context.Context, int64, []string) ([]quotehub.Quote, error) {
			return nil, quotehub.Errorf(quotehub.ETooManySymbols, "too many")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{fetch: tc.fetch}
			w := resilient.Wrap(f, resilient.Options{BaseDelay: time.Millisecond})
			qs, err := w.Fetch(context.Background(), syms)
			if err == nil {
				t.Fatal("no error")
			}
			if n := f.calls.Load(); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
			if tc.name == "Partial" && len(qs) != 1 {
				t.Fatalf("partial result lost: %v", qs)
			}
		})
	}
}

func TestRetryDelays(t *testing.T) {
	const base, maxDelay = 4 * time.Millisecond, 16 * time.Millisecond
	ceiling := func(n int) time.Duration { return min(maxDelay, base<<n) }

	t.Run("GrowExponentially", func(t *testing.T) {
		var delays []time.Duration
		w := resilient.Wrap(&fake{fetch: failing}, resilient.Options{
			Retries: 5, BaseDelay: base, MaxDelay: maxDelay,
			Rand:    func() float64 { return 0.5 },
			OnRetry: func(_ string, _ int, d time.Duration, _ error) { delays = append(delays, d) },
		})
		_, _ = w.Fetch(context.Background(), syms)
		want := []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 8 * time.Millisecond, 8 * time.Millisecond}
		if !slices.Equal(delays, want) {
			t.Fatalf("delays %v, want %v (half of min(MaxDelay, Base·2^n))", delays, want)
		}
	})

	t.Run("FullJitter", func(t *testing.T) {
		var mu sync.Mutex
		byRetry := map[int][]time.Duration{}
		w := resilient.Wrap(&fake{fetch: failing}, resilient.Options{
			Retries: 4, BaseDelay: base, MaxDelay: maxDelay, FailureThreshold: 1000,
			OnRetry: func(_ string, n int, d time.Duration, _ error) {
				mu.Lock()
				byRetry[n] = append(byRetry[n], d)
				mu.Unlock()
			},
		})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { _, _ = w.Fetch(context.Background(), syms) })
		}
		wg.Wait()
		for n := range 4 {
			ds := byRetry[n]
			if len(ds) != 8 {
				t.Fatalf("retry %d happened %d times, want 8", n, len(ds))
			}
			var sum time.Duration
			for _, d := range ds {
				if d < 0 || d >= ceiling(n) {
					t.Fatalf("retry %d waited %v, outside [0, %v)", n, d, ceiling(n))
				}
				sum += d
			}
			if slices.Min(ds) == slices.Max(ds) {
				t.Fatalf("retry %d: no jitter in %v", n, ds)
			}
			// The mean of 8 uniform draws is within 0.45 of the range's
			// middle with overwhelming probability (> 1 - 1e-9).
			if mean := sum / 8; mean < ceiling(n)/20 || mean > ceiling(n)*19/20 {
				t.Fatalf("retry %d: mean wait %v for a ceiling of %v", n, mean, ceiling(n))
			}
		}
	})
}

func TestDeadlineRespected(t *testing.T) {
	t.Run("NoSleepPastDeadline", func(t *testing.T) {
		f := &fake{fetch: failing}
		w := resilient.Wrap(f, resilient.Options{BaseDelay: time.Second, MaxDelay: time.Second,
			Rand: func() float64 { return 0.9 }})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		deadline, _ := ctx.Deadline()
		_, err := w.Fetch(ctx, syms)
		if time.Now().After(deadline) {
			t.Fatal("Fetch returned after the deadline")
		}
		if err != errDown || f.calls.Load() != 1 {
			t.Fatalf("%d attempts, error %v; want one attempt and its error", f.calls.Load(), err)
		}
	})

	t.Run("SlowAttempts", func(t *testing.T) {
		// Each attempt blocks until its context ends; attempts time out
		// after 80ms and the caller's deadline is 200ms.
		f := &fake{fetch: func(ctx context.Context, _ int64, _ []string) ([]quotehub.Quote, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		w := resilient.Wrap(f, resilient.Options{Timeout: 80 * time.Millisecond, Retries: 10, BaseDelay: time.Millisecond})
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := w.Fetch(ctx, syms)
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Fatalf("Fetch took %v with a 200ms deadline", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) || f.calls.Load() < 2 || f.calls.Load() > 3 {
			t.Fatalf("%d attempts, error %v", f.calls.Load(), err)
		}
	})

	t.Run("CanceledIsNotAFailure", func(t *testing.T) {
		c := newClock()
		opts := breakerOpts(c)
		opts.FailureThreshold = 1
		f := &fake{fetch: func(ctx context.Context, _ int64, _ []string) ([]quotehub.Quote, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		w := resilient.Wrap(f, opts)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, err := w.Fetch(ctx, syms); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
		wantState(t, w, resilient.StateClosed)
		if _, err := w.Fetch(ctx, syms); !errors.Is(err, context.Canceled) || f.calls.Load() != 1 {
			t.Fatalf("done ctx: error %v after %d calls", err, f.calls.Load())
		}
	})
}

func TestBreakerOpensAndCloses(t *testing.T) {
	c := newClock()
	var ok2 atomic.Bool
	f := &fake{fetch: func(ctx context.Context, call int64, s []string) ([]quotehub.Quote, error) {
		if ok2.Load() {
			return quotes(s), nil
		}
		return nil, errDown
	}}
	w := resilient.Wrap(f, breakerOpts(c))

	for i := range 3 {
		wantState(t, w, resilient.StateClosed)
		if _, err := w.Fetch(context.Background(), syms); err != errDown {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	wantState(t, w, resilient.StateOpen)
	for range 5 {
		qs, err := w.Fetch(context.Background(), syms)
		wantOpenError(t, qs, err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("inner called %d times, want 3: an open breaker must not call it", n)
	}

	c.Advance(999 * time.Millisecond)
	wantState(t, w, resilient.StateOpen)
	c.Advance(time.Millisecond)
	wantState(t, w, resilient.StateHalfOpen)
	ok2.Store(true)
	if qs, err := w.Fetch(context.Background(), syms); err != nil || len(qs) != 2 {
		t.Fatalf("probe: %v %v", qs, err)
	}
	wantState(t, w, resilient.StateClosed)

	// A success in between resets the count of consecutive failures.
	ok2.Store(false)
	_, _ = w.Fetch(context.Background(), syms)
	_, _ = w.Fetch(context.Background(), syms)
	ok2.Store(true)
	_, _ = w.Fetch(context.Background(), syms)
	ok2.Store(false)
	_, _ = w.Fetch(context.Background(), syms)
	_, _ = w.Fetch(context.Background(), syms)
	wantState(t, w, resilient.StateClosed)
}

func TestHalfOpenSingleProbe(t *testing.T) {
	c := newClock()
	release := make(chan struct{})
	var down atomic.Bool
	down.Store(true)
	f := &fake{fetch: func(ctx context.Context, _ int64, s []string) ([]quotehub.Quote, error) {
		if down.Load() {
			return nil, errDown
		}
		<-release
		return quotes(s), nil
	}}
	w := resilient.Wrap(f, breakerOpts(c))
	for range 3 {
		_, _ = w.Fetch(context.Background(), syms)
	}
	wantState(t, w, resilient.StateOpen)
	c.Advance(time.Second)
	down.Store(false)

	const callers = 10
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		fastFail atomic.Int64
		okCalls  atomic.Int64
	)
	for range callers {
		wg.Go(func() {
			<-start
			qs, err := w.Fetch(context.Background(), syms)
			switch {
			case errors.Is(err, resilient.ErrOpen):
				fastFail.Add(1)
			case err == nil && len(qs) == 2:
				okCalls.Add(1)
			default:
				t.Errorf("unexpected result %v %v", qs, err)
			}
		})
	}
	close(start)
	poll.Until(t, 5*time.Second, "the other callers to fail fast", func() bool { return fastFail.Load() >= callers-1 })
	wantState(t, w, resilient.StateHalfOpen)
	close(release)
	wg.Wait()
	if fastFail.Load() != callers-1 || okCalls.Load() != 1 || f.calls.Load() != 3+1 {
		t.Fatalf("%d fast failures, %d successes, %d inner calls; want 9, 1 and one probe",
			fastFail.Load(), okCalls.Load(), f.calls.Load()-3)
	}
	wantState(t, w, resilient.StateClosed)
}

func TestProbeFailureDoublesOpenFor(t *testing.T) {
	c := newClock()
	var down atomic.Bool
	down.Store(true)
	f := &fake{fetch: func(_ context.Context, _ int64, s []string) ([]quotehub.Quote, error) {
		if down.Load() {
			return nil, errDown
		}
		return quotes(s), nil
	}}
	opts := breakerOpts(c)
	opts.FailureThreshold = 1
	opts.Retries = 3 // a probe is never retried
	opts.BaseDelay = time.Millisecond
	w := resilient.Wrap(f, opts)

	_, _ = w.Fetch(context.Background(), syms) // 4 attempts, then open for 1s
	calls := f.calls.Load()
	// Each failed probe doubles the period: 1s, then 2s, then 3s (the cap).
	for _, period := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		c.Advance(period - time.Millisecond)
		qs, err := w.Fetch(context.Background(), syms)
		wantOpenError(t, qs, err)
		c.Advance(time.Millisecond)
		wantState(t, w, resilient.StateHalfOpen)
		if _, err := w.Fetch(context.Background(), syms); err != errDown {
			t.Fatalf("probe: %v", err)
		}
		if f.calls.Load() != calls+1 {
			t.Fatalf("probe made %d attempts, want 1", f.calls.Load()-calls)
		}
		calls = f.calls.Load()
		wantState(t, w, resilient.StateOpen)
	}
	// Still capped at 3s; then a successful probe resets the period.
	c.Advance(3 * time.Second)
	down.Store(false)
	if _, err := w.Fetch(context.Background(), syms); err != nil {
		t.Fatalf("probe: %v", err)
	}
	wantState(t, w, resilient.StateClosed)
	down.Store(true)
	_, _ = w.Fetch(context.Background(), syms)
	wantState(t, w, resilient.StateOpen)
	c.Advance(time.Second)
	wantState(t, w, resilient.StateHalfOpen)
}

func TestBackoffOpensBreaker(t *testing.T) {
	c := newClock()
	var after atomic.Int64
	f := &fake{fetch: func(_ context.Context, _ int64, s []string) ([]quotehub.Quote, error) {
		if a := time.Duration(after.Load()); a > 0 {
			return quotes(s[:1]), &quotehub.Backoff{Err: errLimited, After: a}
		}
		return quotes(s), nil
	}}
	w := resilient.Wrap(f, breakerOpts(c)) // threshold 3, OpenFor 1s

	// One Backoff opens the breaker at once, for its After (30s > OpenFor).
	after.Store(int64(30 * time.Second))
	qs, err := w.Fetch(context.Background(), syms)
	var bo *quotehub.Backoff
	if !errors.As(err, &bo) || bo.After != 30*time.Second || len(qs) != 1 {
		t.Fatalf("the Backoff and its quotes must reach the caller: %v %v", qs, err)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("a Backoff was retried: %d calls", f.calls.Load())
	}
	wantState(t, w, resilient.StateOpen)
	c.Advance(29 * time.Second)
	qs, err = w.Fetch(context.Background(), syms)
	wantOpenError(t, qs, err)
	wantState(t, w, resilient.StateOpen)
	c.Advance(time.Second)
	wantState(t, w, resilient.StateHalfOpen)
	after.Store(0)
	if _, err := w.Fetch(context.Background(), syms); err != nil {
		t.Fatalf("probe: %v", err)
	}
	wantState(t, w, resilient.StateClosed)

	// A short Backoff opens it for exactly After.
	after.Store(int64(200 * time.Millisecond))
	_, _ = w.Fetch(context.Background(), syms)
	wantState(t, w, resilient.StateOpen)
	c.Advance(199 * time.Millisecond)
	wantState(t, w, resilient.StateOpen)
	c.Advance(time.Millisecond)
	wantState(t, w, resilient.StateHalfOpen)
}

func TestRateLimitedCountsAsFailure(t *testing.T) {
	c := newClock()
	f := &fake{fetch: func(context.Context, int64, []string) ([]quotehub.Quote, error) { return nil, errLimited }}
	w := resilient.Wrap(f, breakerOpts(c))
	for range 3 {
		_, _ = w.Fetch(context.Background(), syms)
	}
	wantState(t, w, resilient.StateOpen)
	if f.calls.Load() != 3 {
		t.Fatalf("%d calls", f.calls.Load())
	}

	// Unknown symbols and partial results are answers, not failures.
	c2 := newClock()
	g := &fake{fetch: func(_ context.Context, call int64, s []string) ([]quotehub.Quote, error) {
		if call%2 == 0 {
			return nil, errUnknown
		}
		return quotes(s[:1]), quotehub.FetchErrors{s[1]: errDown}
	}}
	w = resilient.Wrap(g, breakerOpts(c2))
	for range 10 {
		_, _ = w.Fetch(context.Background(), syms)
	}
	wantState(t, w, resilient.StateClosed)
}

func TestStateChangesAndMetrics(t *testing.T) {
	c := newClock()
	reg := prometheus.NewRegistry()
	m := resilient.NewMetrics(reg)
	var (
		mu      sync.Mutex
		changes []string
	)
	var down atomic.Bool
	down.Store(true)
	f := &fake{fetch: func(_ context.Context, _ int64, s []string) ([]quotehub.Quote, error) {
		if down.Load() {
			return nil, errDown
		}
		return quotes(s), nil
	}}
	opts := breakerOpts(c)
	opts.Metrics = m
	var w *resilient.Provider
	opts.OnStateChange = func(provider, from, to string) {
		_ = w.State() // a hook may look at the breaker
		mu.Lock()
		changes = append(changes, provider+":"+from+">"+to)
		mu.Unlock()
	}
	w = resilient.Wrap(f, opts)
	gauge := func() float64 { return testutil.ToFloat64(m.BreakerState.WithLabelValues("fake")) }
	transitions := func(to string) float64 { return testutil.ToFloat64(m.Transitions.WithLabelValues("fake", to)) }

	if gauge() != 0 {
		t.Fatalf("initial gauge %v", gauge())
	}
	for range 3 {
		_, _ = w.Fetch(context.Background(), syms)
	}
	if gauge() != 2 {
		t.Fatalf("open: gauge %v, want 2", gauge())
	}
	c.Advance(time.Second)
	wantState(t, w, resilient.StateHalfOpen)
	if gauge() != 1 {
		t.Fatalf("half-open: gauge %v, want 1", gauge())
	}
	_, _ = w.Fetch(context.Background(), syms) // failed probe
	c.Advance(2 * time.Second)
	down.Store(false)
	_, _ = w.Fetch(context.Background(), syms) // successful probe
	if gauge() != 0 {
		t.Fatalf("closed: gauge %v, want 0", gauge())
	}
	if transitions(resilient.StateOpen) != 2 || transitions(resilient.StateHalfOpen) != 2 || transitions(resilient.StateClosed) != 1 {
		t.Fatalf("transitions open %v, half_open %v, closed %v", transitions(resilient.StateOpen),
			transitions(resilient.StateHalfOpen), transitions(resilient.StateClosed))
	}
	want := []string{"fake:closed>open", "fake:open>half_open", "fake:half_open>open",
		"fake:open>half_open", "fake:half_open>closed"}
	mu.Lock()
	got := slices.Clone(changes)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("state changes %v, want %v", got, want)
	}

	n, err := testutil.GatherAndCount(reg, "quotehub_upstream_breaker_state",
		"quotehub_upstream_breaker_transitions_total", "quotehub_upstream_retries_total")
	if err != nil || n != 1+3 {
		t.Fatalf("gathered %d series (%v); want the gauge and three transition series", n, err)
	}
}

func TestStreamerForwarding(t *testing.T) {
	plain := resilient.Wrap(&fake{fetch: ok}, resilient.Options{}).AsProvider()
	if _, ok := plain.(quotehub.Streamer); ok {
		t.Fatal("a wrapped plain provider claims to be a Streamer")
	}
	if _, ok := plain.(*resilient.Provider); !ok {
		t.Fatalf("AsProvider of a plain provider is %T", plain)
	}

	inner := &streamingFake{fake: fake{fetch: ok}}
	w := resilient.Wrap(inner, resilient.Options{})
	if _, ok := any(w).(quotehub.Streamer); ok {
		t.Fatal("*resilient.Provider itself must not be a Streamer")
	}
	p := w.AsProvider()
	s, ok := p.(quotehub.Streamer)
	if !ok {
		t.Fatal("a wrapped Streamer lost its Stream capability")
	}
	s.Follow([]string{"KRW-BTC"})
	inner.mu.Lock()
	followed := slices.Clone(inner.followed)
	inner.mu.Unlock()
	if !slices.Equal(followed, []string{"KRW-BTC"}) || !s.Connected() {
		t.Fatalf("Follow/Connected not forwarded: %v", followed)
	}
	var got []quotehub.Quote
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Stream(ctx, func(qs []quotehub.Quote) { got = append(got, qs...) })
	if !inner.streamed.Load() || len(got) != 1 {
		t.Fatal("Stream not forwarded")
	}
	// Fetch of the streaming value still goes through the breaker.
	if qs, err := p.Fetch(context.Background(), syms); err != nil || len(qs) != 2 || inner.calls.Load() != 1 {
		t.Fatalf("Fetch through AsProvider: %v %v", qs, err)
	}
	if sp := p.(*resilient.StreamProvider); sp.State() != resilient.StateClosed {
		t.Fatalf("state %q", sp.State())
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newClock()
	f := &fake{fetch: func(_ context.Context, call int64, s []string) ([]quotehub.Quote, error) {
		switch call % 7 {
		case 0, 1, 2:
			return nil, errDown
		case 3:
			return nil, &quotehub.Backoff{Err: errLimited, After: 5 * time.Millisecond}
		case 4:
			return nil, errUnknown
		default:
			return quotes(s), nil
		}
	}}
	var changes atomic.Int64
	opts := resilient.Options{
		Retries: 1, BaseDelay: 10 * time.Microsecond, FailureThreshold: 2,
		OpenFor: 2 * time.Millisecond, MaxOpenFor: 8 * time.Millisecond, Now: c.Now,
		OnStateChange: func(string, string, string) { changes.Add(1) },
		Metrics:       resilient.NewMetrics(prometheus.NewRegistry()),
	}
	w := resilient.Wrap(f, opts)
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for g := range 8 {
		wg.Go(func() {
			for range 200 {
				if g == 0 {
					c.Advance(time.Millisecond)
				}
				if s := w.State(); s != resilient.StateClosed && s != resilient.StateOpen && s != resilient.StateHalfOpen {
					t.Errorf("state %q", s)
				}
				qs, err := w.Fetch(context.Background(), syms)
				total.Add(1)
				for _, q := range qs {
					if q.Validate() != nil {
						t.Errorf("invalid quote %+v", q)
					}
				}
				_ = err
			}
		})
	}
	wg.Wait()
	if changes.Load() == 0 {
		t.Fatal("the breaker never changed state")
	}
	t.Logf("%d calls, %d inner attempts, %d state changes", total.Load(), f.calls.Load(), changes.Load())
	if f.calls.Load() > 2*total.Load() {
		t.Fatalf("%d inner attempts for %d calls with one retry each", f.calls.Load(), total.Load())
	}
}

// TestWithYahoo runs the breaker in front of the yahoo provider and its
// fake over loopback: an outage opens it after the threshold and then no
// request reaches the fake; a 429 opens it for the Retry-After.
func TestWithYahoo(t *testing.T) {
	c := newClock()
	srv := yahootest.New(yahootest.Options{Budget: -1, RetryAfter: 4 * time.Second})
	defer srv.Close()
	yp := yahoo.New(yahoo.Options{BaseURL: srv.URL(), RatePerSecond: 1000})
	defer yp.CloseIdleConnections()
	w := resilient.Wrap(yp, resilient.Options{Retries: 1, BaseDelay: time.Millisecond,
		FailureThreshold: 2, OpenFor: 10 * time.Second, Now: c.Now})

	if qs, err := w.Fetch(context.Background(), []string{"AAPL", "005930.KS"}); err != nil || len(qs) != 2 {
		t.Fatalf("healthy: %v %v", qs, err)
	}
	srv.SetDown(true)
	for range 2 {
		_, err := w.Fetch(context.Background(), []string{"AAPL", "MSFT"})
		if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
			t.Fatalf("down: %v", err)
		}
	}
	wantState(t, w, resilient.StateOpen)
	sent := srv.Requests()
	if sent != 2+2*2*2 { // the healthy batch, then 2 calls × 2 attempts × 2 symbols
		t.Fatalf("fake saw %d requests", sent)
	}
	qs, err := w.Fetch(context.Background(), []string{"AAPL"})
	wantOpenError(t, qs, err)
	if srv.Requests() != sent {
		t.Fatal("an open breaker let a request through")
	}

	srv.SetDown(false)
	c.Advance(10 * time.Second)
	if qs, err := w.Fetch(context.Background(), []string{"AAPL"}); err != nil || len(qs) != 1 {
		t.Fatalf("probe: %v %v", qs, err)
	}
	wantState(t, w, resilient.StateClosed)

	// A budget of one request a second: of the two requests of one fetch,
	// at least one is a 429, whatever the fake's window still holds.
	srv.SetBudget(1)
	_, err = w.Fetch(context.Background(), []string{"AAPL", "MSFT"})
	var bo *quotehub.Backoff
	if !errors.As(err, &bo) || bo.After != 4*time.Second {
		t.Fatalf("429: %v", err)
	}
	wantState(t, w, resilient.StateOpen)
	c.Advance(4 * time.Second)
	wantState(t, w, resilient.StateHalfOpen)
}

// Example of the wiring a command would do.
func ExampleWrap() {
	w := resilient.Wrap(&fake{fetch: ok}, resilient.Options{Retries: -1})
	qs, err := w.AsProvider().Fetch(context.Background(), []string{"AAPL"})
	fmt.Println(len(qs), err, w.State())
	// Output: 1 <nil> closed
}
