package history_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/history"
	"quotehub/internal/poll"
	"quotehub/store/memory"
)

// flakyStore is a memory store that counts calls and can fail.
type flakyStore struct {
	*memory.CandleStore
	calls atomic.Int64
	down  atomic.Bool
}

func (f *flakyStore) PutCandles(ctx context.Context, b []quotehub.CandleBatch) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errors.New("store down")
	}
	return f.CandleStore.PutCandles(ctx, b)
}

type recFixture struct {
	rec   *history.Recorder
	store *flakyStore
	now   atomic.Int64
	kept  sync.Map // symbol → false when no longer refreshed here
	mu    sync.Mutex
	days  []string // DayClosed calls: "SYMBOL@start"
}

func newRecorder(t *testing.T, start time.Time) *recFixture {
	t.Helper()
	f := &recFixture{store: &flakyStore{CandleStore: memory.NewCandleStore()}}
	f.now.Store(start.UnixNano())
	cals := map[string]string{"KRW-BTC": quotehub.ExchangeUpbit, "KRW-ETH": quotehub.ExchangeUpbit,
		"005930.KS": quotehub.ExchangeKRX, "000660.KS": quotehub.ExchangeKRX}
	f.rec = history.NewRecorder(history.RecorderOptions{
		Calendar: func(sym string) (*quotehub.Calendar, bool) {
			ex, ok := cals[sym]
			return quotehub.CalendarOf(ex), ok
		},
		Store: f.store,
		Now:   f.clock,
		Keeping: func() func(string) bool {
			return func(s string) bool { v, ok := f.kept.Load(s); return !ok || v.(bool) }
		},
		DayClosed: func(_ context.Context, s quotehub.CandleSeries, day quotehub.Period) {
			f.mu.Lock()
			f.days = append(f.days, s.Symbol+"@"+day.Start.UTC().Format(time.RFC3339))
			f.mu.Unlock()
		},
	})
	return f
}

func (f *recFixture) clock() time.Time { return time.Unix(0, f.now.Load()) }

// at moves the clock to t and folds a quote of each symbol traded then.
func (f *recFixture) at(t time.Time, price float64, syms ...string) {
	f.now.Store(t.UnixNano())
	qs := make([]quotehub.Quote, len(syms))
	for i, s := range syms {
		qs[i] = quotehub.Quote{Symbol: s, Price: price, TradeTime: t.UnixMilli(), Market: quotehub.MarketOpen}
	}
	f.rec.Fold(qs)
}

func (f *recFixture) flush(t *testing.T) error {
	t.Helper()
	return f.rec.Flush(context.Background())
}

func (f *recFixture) stored(sym string, iv quotehub.Interval) []quotehub.Candle {
	cs, _ := f.store.Candles(context.Background(), quotehub.CandleSeries{Symbol: sym, Interval: iv},
		time.Unix(0, 0), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	return cs
}

// The candle of a period the node saw only in part (it began recording
// mid-minute) is never written; the next, whole one is, once, closed, in
// one write with the other symbols'.
func TestRecorderWritesWholeClosedCandlesOnce(t *testing.T) {
	m := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	f := newRecorder(t, m)
	f.at(m.Add(30*time.Second), 10, "KRW-BTC", "KRW-ETH")
	f.at(m.Add(70*time.Second), 12, "KRW-BTC", "KRW-ETH") // closes 02:20, seen from :30 only
	f.at(m.Add(90*time.Second), 9, "KRW-BTC", "KRW-ETH")
	f.at(m.Add(100*time.Second), 11, "KRW-BTC")
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if got := f.stored("KRW-BTC", quotehub.Minute1); len(got) != 0 {
		t.Fatalf("wrote %v: the 02:20 minute was seen in part, 02:21 is open", got)
	}
	f.now.Store(m.Add(2 * time.Minute).UnixNano()) // 02:21 ends without another quote
	calls := f.store.calls.Load()
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := f.store.calls.Load() - calls; n != 1 {
		t.Fatalf("%d writes for two symbols' closed minute, want 1", n)
	}
	want := quotehub.Candle{T: m.Add(time.Minute).UnixMilli(), Open: 12, High: 12, Low: 9, Close: 11, Closed: true}
	if got := f.stored("KRW-BTC", quotehub.Minute1); !slices.Equal(got, []quotehub.Candle{want}) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	if got := f.stored("KRW-ETH", quotehub.Minute1); len(got) != 1 || got[0].Close != 9 {
		t.Fatalf("KRW-ETH stored %v", got)
	}
	for _, iv := range []quotehub.Interval{quotehub.Minute5, quotehub.Minute15, quotehub.Hour1, quotehub.Day1} {
		if got := f.stored("KRW-BTC", iv); len(got) != 0 {
			t.Errorf("%s: wrote the open or partial %v", iv, got)
		}
	}
	// Nothing new closed: no write at all.
	calls = f.store.calls.Load()
	if err := f.flush(t); err != nil || f.store.calls.Load() != calls {
		t.Fatalf("an idle flush wrote (%v)", err)
	}
}

// A store that fails keeps the closed candles for the next flush, which
// writes them together with what closed since.
func TestRecorderRetriesAfterStoreFailure(t *testing.T) {
	m := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	f := newRecorder(t, m.Add(-time.Second))
	f.at(m, 1, "KRW-BTC")
	f.at(m.Add(time.Minute), 2, "KRW-BTC")
	f.store.down.Store(true)
	if err := f.flush(t); err == nil {
		t.Fatal("a failed write was not reported")
	}
	f.at(m.Add(2*time.Minute), 3, "KRW-BTC")
	f.store.down.Store(false)
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	got := f.stored("KRW-BTC", quotehub.Minute1)
	if len(got) != 2 || got[0].Close != 1 || got[1].Close != 2 {
		t.Fatalf("after the store came back: %v, want the 02:20 and 02:21 minutes", got)
	}
}

// A symbol this node stops refreshing is forgotten; when it comes back,
// the first candle it sees is partial again.
func TestRecorderForgetsSymbolsItNoLongerRefreshes(t *testing.T) {
	m := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	f := newRecorder(t, m.Add(-time.Second))
	f.at(m, 1, "KRW-BTC")
	f.kept.Store("KRW-BTC", false)
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	f.kept.Store("KRW-BTC", true)
	f.at(m.Add(30*time.Second), 2, "KRW-BTC") // back mid-minute: seen in part
	f.at(m.Add(60*time.Second), 3, "KRW-BTC")
	f.now.Store(m.Add(2 * time.Minute).UnixNano())
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if got := f.stored("KRW-BTC", quotehub.Minute1); len(got) != 1 || got[0].T != m.Add(time.Minute).UnixMilli() {
		t.Fatalf("stored %v, want only the 02:21 minute", got)
	}
}

// Daily closes: at the KRX close the day candles of the symbols seen all
// day are written in one batch; a symbol first seen during the day is
// handed to DayClosed once, after the close has settled.
func TestRecorderDailyCloses(t *testing.T) {
	cal := quotehub.CalendarOf(quotehub.ExchangeKRX)
	day, ok := cal.Period(time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC), quotehub.Day1)
	if !ok {
		t.Fatal("2026-12-03 is a KRX trading day")
	}
	f := newRecorder(t, day.Start.Add(-10*time.Minute))
	f.at(day.Start.Add(-10*time.Minute), 70000, "005930.KS") // before the open: not in any period
	f.at(day.Start, 71000, "005930.KS")
	f.at(day.Start.Add(2*time.Hour), 69000, "005930.KS", "000660.KS")
	f.at(day.End.Add(-time.Minute), 70500, "005930.KS", "000660.KS")
	f.now.Store(day.End.UnixNano())
	calls := f.store.calls.Load()
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := f.store.calls.Load() - calls; n != 1 {
		t.Fatalf("%d writes at the close, want 1", n)
	}
	want := quotehub.Candle{T: day.Start.UnixMilli(), Open: 71000, High: 71000, Low: 69000, Close: 70500, Closed: true}
	if got := f.stored("005930.KS", quotehub.Day1); !slices.Equal(got, []quotehub.Candle{want}) {
		t.Fatalf("day candle %v, want %v", got, want)
	}
	if got := f.stored("000660.KS", quotehub.Day1); len(got) != 0 {
		t.Fatalf("wrote the day of a symbol seen from 11:00 only: %v", got)
	}
	f.rec.Wait()
	if len(f.days) != 0 {
		t.Fatalf("DayClosed before the close settled: %v", f.days)
	}
	f.now.Store(day.End.Add(time.Minute).UnixNano())
	for range 2 {
		if err := f.flush(t); err != nil {
			t.Fatal(err)
		}
	}
	f.rec.Wait()
	if want := []string{"000660.KS@" + day.Start.UTC().Format(time.RFC3339)}; !slices.Equal(f.days, want) {
		t.Fatalf("DayClosed calls %v, want %v", f.days, want)
	}
}

// Run flushes on its ticker, and once more when it stops.
func TestRecorderRun(t *testing.T) {
	m := time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)
	f := newRecorder(t, m.Add(-time.Second))
	f.at(m, 1, "KRW-BTC")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.rec.Run(ctx, 5*time.Millisecond) }()
	f.at(m.Add(time.Minute), 2, "KRW-BTC")
	poll.Until(t, 5*time.Second, "the ticker to write the 02:20 minute", func() bool {
		return len(f.stored("KRW-BTC", quotehub.Minute1)) == 1
	})
	f.store.down.Store(true)
	f.at(m.Add(2*time.Minute), 3, "KRW-BTC") // closes 02:21; the store is down
	poll.Until(t, 5*time.Second, "a failed flush", func() bool { return f.store.calls.Load() >= 3 })
	f.store.down.Store(false)
	cancel()
	<-done
	if got := f.stored("KRW-BTC", quotehub.Minute1); len(got) != 2 {
		t.Fatalf("after Run stopped: %v, want the 02:20 and 02:21 minutes", got)
	}
}
