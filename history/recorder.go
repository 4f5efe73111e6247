package history

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
)

// RecorderOptions configure a Recorder. Calendar and Store are required.
type RecorderOptions struct {
	// Calendar names a symbol's market calendar; ok false: not recorded.
	Calendar func(symbol string) (*quotehub.Calendar, bool)
	// Store receives the closed candles, one PutCandles per flush.
	Store quotehub.CandleStore
	// Keeping is called at each flush and returns whether this node still
	// refreshes a symbol; a symbol it no longer refreshes is forgotten, so
	// that if it comes back its first candles, seen only in part, are not
	// written. Default: keep every symbol.
	Keeping func() (keep func(symbol string) bool)
	// DayClosed is called with each day candle this node saw only in
	// part (it began recording the symbol after the day opened), Settle
	// after the day's end, on a goroutine of the flush that found it due:
	// the caller has it filled from the upstream (a read through
	// Service), so every symbol quoted that day gets its final day
	// candle. Default: none.
	DayClosed func(ctx context.Context, s quotehub.CandleSeries, day quotehub.Period)
	// Settle is how long after a day's end DayClosed is called, so the
	// upstream has the final candle; default 10 s.
	Settle time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxPending bounds the closed candles kept for a store that is
	// down; the oldest go first. Default 100,000.
	MaxPending int
	Logger     *zerolog.Logger
}

// Recorder folds the quotes of the symbols this node refreshes into the
// candles of every interval and, at each flush, writes the candles whose
// period has ended in one batch: each closed candle is written once, by
// the node that refreshes its symbol, and daily closes are written at the
// market's close together with everything else that closed. Only candles
// whose whole period the recorder saw are written (it recorded the symbol
// from before the period began); nothing partial is marked closed.
type Recorder struct {
	o RecorderOptions

	mu      sync.Mutex
	syms    map[string]*recording
	pending map[quotehub.CandleSeries][]quotehub.Candle
	npend   int
	partial []partialDay

	days sync.WaitGroup // DayClosed calls in flight
}

type recording struct {
	b     *Builder
	since time.Time // when this node began recording the symbol
}

type partialDay struct {
	s   quotehub.CandleSeries
	day quotehub.Period
}

// NewRecorder returns a Recorder.
func NewRecorder(o RecorderOptions) *Recorder {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Keeping == nil {
		o.Keeping = func() func(string) bool { return func(string) bool { return true } }
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 100_000
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
	return &Recorder{o: o, syms: make(map[string]*recording), pending: make(map[quotehub.CandleSeries][]quotehub.Candle)}
}

// Fold records quotes of symbols this node refreshes. It runs on the
// refresher's write path: a few comparisons per quote and interval.
func (r *Recorder) Fold(quotes []quotehub.Quote) {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range quotes {
		q := &quotes[i]
		rec := r.syms[q.Symbol]
		if rec == nil {
			cal, ok := r.o.Calendar(q.Symbol)
			if !ok {
				continue
			}
			rec = &recording{b: NewBuilder(cal, quotehub.Intervals...), since: now}
			r.syms[q.Symbol] = rec
		}
		r.closed(q.Symbol, rec, rec.b.AddQuote(*q))
	}
}

// closed sorts candles that just closed into whole ones (pending a write)
// and partial day candles (left to DayClosed). Called with r.mu held.
func (r *Recorder) closed(sym string, rec *recording, cs []IntervalCandle) {
	for _, c := range cs {
		s := quotehub.CandleSeries{Symbol: sym, Interval: c.Interval}
		if c.Period.Start.Before(rec.since) {
			if c.Interval == quotehub.Day1 {
				r.partial = append(r.partial, partialDay{s: s, day: c.Period})
			}
			continue
		}
		r.pending[s] = append(r.pending[s], c.Candle)
		r.npend++
	}
}

// Flush closes the candles whose period ended by now and writes every
// closed candle not written yet in one PutCandles. When the store fails
// the candles stay pending for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	now := r.o.Now()
	keep := r.o.Keeping()
	r.mu.Lock()
	for sym, rec := range r.syms {
		r.closed(sym, rec, rec.b.CloseUntil(now))
		if !keep(sym) {
			delete(r.syms, sym)
		}
	}
	batches := make([]quotehub.CandleBatch, 0, len(r.pending))
	for s, cs := range r.pending {
		batches = append(batches, quotehub.CandleBatch{CandleSeries: s, Candles: cs})
	}
	var due []partialDay
	rest := r.partial[:0]
	for _, p := range r.partial {
		if now.Before(p.day.End.Add(r.o.Settle)) {
			rest = append(rest, p)
		} else {
			due = append(due, p)
		}
	}
	r.partial = rest
	r.mu.Unlock()

	if len(due) > 0 && r.o.DayClosed != nil {
		// Off the flush: each may wait for the upstream.
		r.days.Go(func() {
			for _, p := range due {
				r.o.DayClosed(ctx, p.s, p.day)
			}
		})
	}
	if len(batches) == 0 {
		return nil
	}
	err := r.o.Store.PutCandles(ctx, batches)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		// What closed while the write ran stays pending.
		for _, b := range batches {
			rest := r.pending[b.CandleSeries][len(b.Candles):]
			r.npend -= len(b.Candles)
			if len(rest) == 0 {
				delete(r.pending, b.CandleSeries)
			} else {
				r.pending[b.CandleSeries] = rest
			}
		}
		return nil
	}
	r.dropOverflow()
	return err
}

// dropOverflow drops the oldest pending candles beyond MaxPending: a
// store down for long loses the oldest live candles (a later read fills
// their chunks from the upstream). Called with r.mu held.
func (r *Recorder) dropOverflow() {
	for r.npend > r.o.MaxPending {
		var oldest quotehub.CandleSeries
		var t int64
		first := true
		for s, cs := range r.pending {
			if first || cs[0].T < t {
				oldest, t, first = s, cs[0].T, false
			}
		}
		cs := r.pending[oldest]
		if len(cs) == 1 {
			delete(r.pending, oldest)
		} else {
			r.pending[oldest] = cs[1:]
		}
		r.npend--
	}
}

// Wait waits for the DayClosed calls that flushes started.
func (r *Recorder) Wait() { r.days.Wait() }

// Run flushes every period until ctx ends, and once more then; it returns
// when the DayClosed calls it started have.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	defer r.days.Wait()
	failing := false
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.o.Logger.Warn().Err(err).Msg("writing closed candles at stop failed")
			}
			cancel()
			return
		case <-t.C:
			// One line when writes start failing and one when they
			// recover, not one a second while the database is away.
			err := r.Flush(ctx)
			switch {
			case err != nil && !failing:
				r.o.Logger.Warn().Err(err).Msg("writing closed candles failed; they are kept and retried every flush")
			case err == nil && failing:
				r.o.Logger.Info().Msg("writing closed candles works again")
			}
			failing = err != nil
		}
	}
}
