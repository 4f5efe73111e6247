package refresher

import (
	"context"
	"time"

	"quotehub"
)

// Read answers a read of a catalogued, normalised symbol with
// stale-while-revalidate: a fresh value at once; a stale one at once plus
// one background refresh; a miss waits for one fetch shared by every
// concurrent reader of the symbol, up to FetchTimeout, then fails with
// upstream_unavailable. The read makes the symbol active for the window.
func (r *Refresher) Read(ctx context.Context, sym string) (quotehub.Reading, error) {
	now := r.opts.Now()
	// The cache is read before the symbol's state exists: a new state is
	// due at once, and the refresher's loop could fetch it before this
	// read looks, turning a miss into a hit. A miss joins that fetch.
	q, ok, err := r.opts.Cache.Get(ctx, sym)
	if err != nil {
		r.opts.Metrics.Errors.WithLabelValues("cache_get").Inc()
		return quotehub.Reading{}, err
	}
	r.noteRead(sym, now) // before ensureState: pollActive keeps the state of read symbols
	st := r.ensureState(ctx, sym)
	if st == nil {
		return quotehub.Reading{}, quotehub.Errorf(quotehub.EUnknownSymbol, "%s has no upstream provider", sym)
	}
	if ok {
		rd := r.classify(q, st.cal, now)
		if rd.Result == quotehub.CacheStale && r.mayFetch(ctx, sym, st) {
			r.startFetch(ctx, st.src, []string{sym}, false, time.Time{})
		}
		r.opts.Metrics.CacheReads.WithLabelValues(rd.Result).Inc()
		return rd, nil
	}
	r.opts.Metrics.CacheReads.WithLabelValues(quotehub.CacheMiss).Inc()
	if r.opts.DayClose != nil && !st.cal.IsOpen(now) {
		if q, ok := r.opts.DayClose(ctx, sym); ok {
			if r.mayFetch(ctx, sym, st) {
				r.startFetch(ctx, st.src, []string{sym}, false, time.Time{})
			}
			rd := r.classify(q, st.cal, now)
			rd.Result = quotehub.CacheMiss
			return rd, nil
		}
	}
	if !r.mayFetch(ctx, sym, st) {
		return r.awaitValue(ctx, sym, st)
	}
	f := r.startFetch(ctx, st.src, []string{sym}, false, time.Time{})[sym]
	if f == nil {
		return quotehub.Reading{}, quotehub.Errorf(quotehub.EInternal, "no fetch for %s", sym)
	}
	wait, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	select {
	case <-f.done:
	case <-wait.Done():
		if ctx.Err() != nil {
			return quotehub.Reading{}, ctx.Err()
		}
		return quotehub.Reading{}, quotehub.Errorf(quotehub.EUpstreamUnavailable, "no value for %s within %s", sym, r.opts.FetchTimeout)
	}
	if f.err != nil {
		if code := quotehub.ErrorCode(f.err); code == quotehub.EUnknownSymbol || code == quotehub.EUpstreamUnavailable {
			return quotehub.Reading{}, f.err
		}
		return quotehub.Reading{}, quotehub.Errorf(quotehub.EUpstreamUnavailable, "the upstream failed for %s", sym)
	}
	q, ok, err = r.opts.Cache.Get(ctx, sym)
	if err != nil {
		return quotehub.Reading{}, err
	}
	if !ok {
		return quotehub.Reading{}, quotehub.Errorf(quotehub.EUpstreamUnavailable, "no value for %s", sym)
	}
	rd := r.classify(q, st.cal, r.opts.Now())
	rd.Result = quotehub.CacheMiss
	return rd, nil
}

// mayFetch says whether this node should fetch sym for a read: yes if it
// already has a fetch in flight (it will join it), if there is no cluster
// lock, or if it takes the lock; also yes if the lock cannot be reached, so
// a node cut off from Redis still serves its readers.
func (r *Refresher) mayFetch(ctx context.Context, sym string, st *symState) bool {
	r.mu.Lock()
	inFlight := st.flight != nil
	r.mu.Unlock()
	if inFlight || r.opts.FetchLock == nil {
		return true
	}
	ok, err := r.opts.FetchLock.TryLock(ctx, sym, r.opts.FetchTimeout)
	return ok || err != nil
}

// awaitValue waits, up to FetchTimeout, for another node's fetch of sym to
// reach the cache.
func (r *Refresher) awaitValue(ctx context.Context, sym string, st *symState) (quotehub.Reading, error) {
	wait, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	poll := 10 * time.Millisecond
	for {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return quotehub.Reading{}, ctx.Err()
			}
			return quotehub.Reading{}, quotehub.Errorf(quotehub.EUpstreamUnavailable, "no value for %s within %s", sym, r.opts.FetchTimeout)
		case <-time.After(poll):
		}
		q, ok, err := r.opts.Cache.Get(ctx, sym)
		if err != nil {
			return quotehub.Reading{}, err
		}
		if ok {
			rd := r.classify(q, st.cal, r.opts.Now())
			rd.Result = quotehub.CacheMiss
			return rd, nil
		}
		poll = min(2*poll, 100*time.Millisecond)
	}
}

// classify says whether q is fresh at now.
func (r *Refresher) classify(q quotehub.Quote, cal *quotehub.Calendar, now time.Time) quotehub.Reading {
	age := max(0, now.Sub(time.UnixMilli(q.FetchedAt)))
	rd := quotehub.Reading{Quote: q, Age: age, Result: quotehub.CacheHit}
	closed := q.Market == quotehub.MarketClosed && !cal.IsOpen(now)
	switch {
	case closed:
		rd.MaxAge = r.opts.Freshness
	case age < r.opts.Freshness:
		rd.MaxAge = r.opts.Freshness - age
	default:
		rd.Result = quotehub.CacheStale
	}
	return rd
}

// noteRead makes sym active: at once (through the loop) the first time it
// is read within a heartbeat, and through the heartbeat after that, so a
// hot symbol costs one active-set write per heartbeat, not one per read.
func (r *Refresher) noteRead(sym string, now time.Time) {
	r.mu.Lock()
	r.lastRead[sym] = now
	last, ok := r.touched[sym]
	fresh := !ok || now.Sub(last) >= r.opts.Heartbeat
	if fresh {
		r.touched[sym] = now
	}
	r.mu.Unlock()
	if fresh {
		r.touchAsync(sym, true)
	}
}
