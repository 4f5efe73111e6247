package refresher_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/refresher"
)

// streamer is a push provider for tests: while up, it emits a new quote of
// every followed symbol every 5 ms; Fetch answers like a REST endpoint.
type streamer struct {
	fakeProvider
	mu       sync.Mutex
	follow   []string
	follows  int
	up       atomic.Bool
	price    atomic.Int64
	returned atomic.Bool
	emitted  atomic.Int64
}

func newStreamer() *streamer {
	s := &streamer{}
	s.batch = 10
	s.up.Store(true)
	s.fetch = func(_ context.Context, syms []string) ([]quotehub.Quote, error) {
		var qs []quotehub.Quote
		for _, sym := range syms {
			qs = append(qs, good(sym, float64(s.price.Add(1))))
		}
		return qs, nil
	}
	return s
}

func (s *streamer) Follow(syms []string) {
	s.mu.Lock()
	s.follow = slices.Clone(syms)
	s.follows++
	s.mu.Unlock()
}

func (s *streamer) followed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.follow)
}

func (s *streamer) Connected() bool { return s.up.Load() }

func (s *streamer) Stream(ctx context.Context, emit func([]quotehub.Quote)) error {
	defer s.returned.Store(true)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if !s.up.Load() {
			continue
		}
		var qs []quotehub.Quote
		for _, sym := range s.followed() {
			q := good(sym, float64(s.price.Add(1)))
			q.TradeTime += s.price.Load()
			qs = append(qs, q)
		}
		if len(qs) > 0 {
			s.emitted.Add(int64(len(qs)))
			emit(qs)
		}
	}
}

func TestPush(t *testing.T) {
	// In a synctest bubble, "nothing polled for 300 ms" is exact.
	synctest.Test(t, func(t *testing.T) {
		p := newStreamer()
		var owned sync.Map
		owned.Store("KRW-BTC", true)
		owned.Store("KRW-ETH", true)
		e := start(t, p, func(o *refresher.Options) {
			o.Sources[0].Push = true
			o.Sources[0].Interval = 50 * time.Millisecond
			o.Owns = func(s string) bool { _, ok := owned.Load(s); return ok }
		})
		e.activate("KRW-BTC", "KRW-ETH", "KRW-XRP")
		poll.Until(t, 5*time.Second, "the owned symbols to be followed", func() bool {
			return slices.Equal(p.followed(), []string{"KRW-BTC", "KRW-ETH"})
		})
		poll.Until(t, 5*time.Second, "streamed quotes published", func() bool { return len(e.got()) > 20 })
		// Connected: nothing is polled once every symbol has its first value.
		time.Sleep(50 * time.Millisecond)
		calls := p.calls.Load()
		time.Sleep(300 * time.Millisecond)
		if got := p.calls.Load(); got != calls {
			t.Errorf("polled %d times while the stream was up", got-calls)
		}
		for _, q := range e.got() {
			if q.Symbol == "KRW-XRP" {
				t.Fatal("a symbol this node does not own was published")
			}
		}

		// Down: polling takes over at the interval.
		p.up.Store(false)
		poll.Until(t, 5*time.Second, "polling while the stream is down", func() bool { return p.calls.Load() >= calls+4 })

		// Up again: polling stops.
		p.up.Store(true)
		time.Sleep(100 * time.Millisecond)
		calls = p.calls.Load()
		time.Sleep(300 * time.Millisecond)
		if got := p.calls.Load(); got > calls+1 {
			t.Errorf("polled %d times after the stream came back", got-calls)
		}

		// Ownership moves: the followed set follows.
		owned.Delete("KRW-ETH")
		e.r.Kick()
		poll.Until(t, 5*time.Second, "KRW-ETH to be unfollowed", func() bool { return slices.Equal(p.followed(), []string{"KRW-BTC"}) })

		// Seqs never go backwards in what was published.
		last := map[string]uint64{}
		for _, q := range e.got() {
			if q.Seq <= last[q.Symbol] {
				t.Fatalf("%s published seq %d after %d", q.Symbol, q.Seq, last[q.Symbol])
			}
			last[q.Symbol] = q.Seq
		}
	})
}
