package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"quotehub"
	"quotehub/hub"
	"quotehub/internal/poll"
)

// fakeCandles is a hub.CandleSource the test drives: Current answers
// cur, and once the clock passes its end, next (the new period); Final
// answers final when its period matches.
type fakeCandles struct {
	mu       sync.Mutex
	cur      map[quotehub.CandleSeries]hub.CandleValue
	next     map[quotehub.CandleSeries]hub.CandleValue
	final    map[quotehub.CandleSeries]hub.CandleValue
	none     map[string]bool // symbols without candles
	currents atomic.Int64    // Current calls
	// hold, if set, holds the next Current after it has read its value,
	// until the channel is closed.
	hold chan struct{}
}

func newFakeCandles() *fakeCandles {
	return &fakeCandles{cur: map[quotehub.CandleSeries]hub.CandleValue{}, next: map[quotehub.CandleSeries]hub.CandleValue{},
		final: map[quotehub.CandleSeries]hub.CandleValue{}, none: map[string]bool{"AAPL": true}}
}

func (f *fakeCandles) Check(_ context.Context, symbol string) error {
	if f.none[symbol] {
		return quotehub.Errorf(quotehub.ENotFound, "no candles for %s", symbol)
	}
	return nil
}

func (f *fakeCandles) Current(_ context.Context, s quotehub.CandleSeries) (hub.CandleValue, bool) {
	f.currents.Add(1)
	f.mu.Lock()
	v, ok := f.cur[s]
	if ok && !time.Now().Before(v.End) {
		if v, ok = f.next[s]; ok {
			f.cur[s] = v
			delete(f.next, s)
		}
	}
	hold := f.hold
	f.hold = nil
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return v, ok
}

func (f *fakeCandles) Final(_ context.Context, s quotehub.CandleSeries, t int64) (hub.CandleValue, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.final[s]
	return v, ok && v.T == t
}

func (f *fakeCandles) set(s quotehub.CandleSeries, v hub.CandleValue) {
	f.mu.Lock()
	f.cur[s] = v
	f.mu.Unlock()
}

var (
	btc1m = quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Minute1}
	btc1d = quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Day1}
)

// candle is a candle value of the period starting at t (Unix ms) and
// ending at end, with close c and seq.
func candle(t int64, end time.Time, c float64, seq uint64) hub.CandleValue {
	return hub.CandleValue{Candle: quotehub.Candle{T: t, Open: 100, High: max(100, c), Low: min(100, c), Close: c, V: float64(seq)},
		Seq: seq, FetchedAt: time.Now().UnixMilli(), End: end}
}

// wireCandle is a decoded candle update.
type wireCandle struct {
	Symbol    string  `json:"symbol"`
	Interval  string  `json:"interval"`
	T         int64   `json:"t"`
	O         float64 `json:"o"`
	H         float64 `json:"h"`
	L         float64 `json:"l"`
	C         float64 `json:"c"`
	V         float64 `json:"v"`
	Closed    bool    `json:"closed"`
	Seq       uint64  `json:"seq"`
	FetchedAt int64   `json:"fetched_at"`
	snapshot  bool
}

func (w wireCandle) String() string {
	return fmt.Sprintf("%s/%s t=%d c=%g closed=%v seq=%d snap=%v", w.Symbol, w.Interval, w.T, w.C, w.Closed, w.Seq, w.snapshot)
}

// candles returns the candle updates the recorder got, decoded, in order.
func (r *recorder) candles(t *testing.T) []wireCandle {
	t.Helper()
	var out []wireCandle
	for _, u := range r.quotes() {
		if u.Interval == 0 {
			continue
		}
		var w wireCandle
		if err := json.Unmarshal(u.JSON, &w); err != nil {
			t.Fatalf("candle %s: %v", u.JSON, err)
		}
		if w.Interval != u.Interval.String() || w.Symbol != u.Symbol {
			t.Fatalf("candle %s does not match its update %+v", u.JSON, u)
		}
		w.snapshot = u.Snapshot
		out = append(out, w)
	}
	return out
}

func candleEnv(t *testing.T, src *fakeCandles, mod func(*hub.Options)) *env {
	return newEnv(t, func(o *hub.Options) {
		o.Candles = src
		if mod != nil {
			mod(o)
		}
	})
}

func TestCandleSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeCandles()
		end := time.Now().Add(time.Minute)
		src.set(btc1m, candle(1000, end, 101, 1))
		src.set(btc1d, candle(500, end.Add(time.Hour), 101, 1))
		e := candleEnv(t, src, nil)
		r := newRecorder()
		c := e.connect(t, r)
		c.HandleFrame(context.Background(), []byte(`{"op":"subscribe","id":"c1","symbols":["KRW-BTC","AAPL","NOPE"],"candles":["1d","1m","1m"]}`), false)
		synctest.Wait()
		f := r.frames(t)
		if len(f) != 1 || f[0]["type"] != "subscribed" || fmt.Sprint(f[0]["symbols"]) != "[KRW-BTC]" || fmt.Sprint(f[0]["candles"]) != "[1m 1d]" {
			t.Fatalf("frames = %v", f)
		}
		if rej := fmt.Sprint(f[0]["rejected"]); !strings.Contains(rej, "symbol:NOPE") || !strings.Contains(rej, "code:unknown_symbol") ||
			!strings.Contains(rej, "symbol:AAPL") || !strings.Contains(rej, "code:not_found") {
			t.Errorf("rejected = %s, want NOPE unknown_symbol and AAPL not_found", rej)
		}
		got := r.candles(t)
		if len(got) != 2 || !got[0].snapshot || !got[1].snapshot || got[0].Interval == got[1].Interval ||
			got[0].Symbol != "KRW-BTC" || got[0].O != 100 || got[0].C != 101 || got[0].Closed || got[0].Seq != 1 || got[0].FetchedAt == 0 {
			t.Fatalf("snapshots = %v", got)
		}
		if c.Subscribed() != 1 || c.CandleStreams() != 2 || e.hub.WatchedSeries() != 2 || e.hub.Subscribers("KRW-BTC") != 1 {
			t.Fatalf("subscribed %d, streams %d, watched %d", c.Subscribed(), c.CandleStreams(), e.hub.WatchedSeries())
		}

		// A quote of the symbol: the pump recomputes both; only 1m moved.
		src.set(btc1m, candle(1000, end, 103, 2))
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 2, 103)})
		synctest.Wait()
		got = r.candles(t)
		if len(got) != 3 || got[2].Interval != "1m" || got[2].snapshot || got[2].C != 103 || got[2].Seq != 2 {
			t.Fatalf("after a quote: %v", got)
		}
		// A quote of a symbol without candle streams asks the source nothing.
		n := src.currents.Load()
		e.hub.Publish([]quotehub.Quote{quote("KRW-ETH", 3, 1)})
		synctest.Wait()
		if src.currents.Load() != n {
			t.Errorf("a quote of an unwatched symbol made the pump compute candles")
		}
		c.Close()
		if e.hub.WatchedSeries() != 0 {
			t.Errorf("watched series after close: %d", e.hub.WatchedSeries())
		}
	})
}

// TestCandleSnapshotRacesThePump: a stream's snapshot read from the
// source while the pump publishes a newer version of the same period (the
// quote that came meanwhile, with its seq) does not follow that version
// with the older value: the stream's seq never goes back.
func TestCandleSnapshotRacesThePump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeCandles()
		end := time.Now().Add(time.Minute)
		src.set(btc1m, candle(1000, end, 101, 0)) // no quote folded yet: no seq
		release := make(chan struct{})
		src.hold = release
		e := candleEnv(t, src, nil)
		r := newRecorder()
		c := e.connect(t, r)
		go c.HandleFrame(context.Background(), []byte(`{"op":"subscribe","id":"c1","symbols":["KRW-BTC"],"candles":["1m"]}`), false)
		synctest.Wait() // the snapshot is read, and held
		src.set(btc1m, candle(1000, end, 102, 5))
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 5, 102)})
		synctest.Wait() // the pump has published seq 5
		close(release)
		synctest.Wait()
		got := r.candles(t)
		if len(got) == 0 {
			t.Fatal("no candle")
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq < got[i-1].Seq {
				t.Errorf("seq went back: %v after %v", got[i], got[i-1])
			}
		}
		if last := got[len(got)-1]; last.Seq != 5 || last.C != 102 {
			t.Errorf("the newest candle is %v, want seq 5 at 102 (all: %v)", last, got)
		}
	})
}

func TestCandleSubscribeErrors(t *testing.T) {
	ctx := context.Background()
	errFrame := func(t *testing.T, e *env, msg string) map[string]any {
		t.Helper()
		r := newRecorder()
		c := e.connect(t, r)
		c.HandleFrame(ctx, []byte(msg), false)
		var f []map[string]any
		poll.Until(t, 10*time.Second, "the error frame", func() bool { f = r.frames(t); return len(f) > 0 })
		if len(f) != 1 || f[0]["type"] != "error" {
			t.Fatalf("%s → %v, want one error frame", msg, f)
		}
		if c.Subscribed() != 0 || c.CandleStreams() != 0 {
			t.Errorf("%s subscribed %d symbols, %d streams", msg, c.Subscribed(), c.CandleStreams())
		}
		return f[0]
	}
	e := candleEnv(t, newFakeCandles(), func(o *hub.Options) { o.MaxCandleStreams = 3 })
	for _, tc := range []struct{ msg, code, mention string }{
		{`{"op":"subscribe","symbols":["KRW-BTC"],"candles":["1m","2m"]}`, "bad_request", `"2m"`},
		{`{"op":"subscribe","symbols":["KRW-BTC"],"candles":["1M","1min"]}`, "bad_request", `"1min"`},
		{`{"op":"subscribe","symbols":["KRW-BTC"],"candles":"1m"}`, "bad_request", "candles"},
		{`{"op":"subscribe","symbols":["KRW-BTC"],"candles":[]}`, "bad_request", "candles"},
		{`{"op":"unsubscribe","symbols":["KRW-BTC"],"candles":["1h","5d"]}`, "bad_request", `"5d"`},
		{`{"op":"subscribe","symbols":["KRW-BTC","KRW-ETH"],"candles":["1m","1d"]}`, "too_many_symbols", "candle streams"},
	} {
		f := errFrame(t, e, tc.msg)
		if f["code"] != tc.code || !strings.Contains(f["message"].(string), tc.mention) {
			t.Errorf("%s → %v, want %s mentioning %s", tc.msg, f, tc.code, tc.mention)
		}
	}
	// Within the limit, then past it with what is held counted.
	r := newRecorder()
	c := e.connect(t, r)
	if err := c.SubscribeCandles(ctx, nil, []string{"KRW-BTC"}, []quotehub.Interval{quotehub.Minute1, quotehub.Day1}); err != nil {
		t.Fatal(err)
	}
	err := c.SubscribeCandles(ctx, nil, []string{"KRW-BTC", "KRW-ETH"}, []quotehub.Interval{quotehub.Minute1, quotehub.Hour1})
	if quotehub.ErrorCode(err) != quotehub.ETooManySymbols || c.CandleStreams() != 2 {
		t.Fatalf("2 held + 3 new over 3: %v, %d streams", err, c.CandleStreams())
	}
	if err := c.SubscribeCandles(ctx, nil, []string{"KRW-BTC"}, []quotehub.Interval{quotehub.Minute1, quotehub.Day1, quotehub.Week1}); err != nil || c.CandleStreams() != 3 {
		t.Fatalf("2 held + 1 new: %v, %d streams", err, c.CandleStreams())
	}

	// A node without candles refuses candle subscriptions.
	plain := newEnv(t, nil)
	f := errFrame(t, plain, `{"op":"subscribe","symbols":["KRW-BTC"],"candles":["1m"]}`)
	if f["code"] != "not_found" {
		t.Errorf("no candle source → %v", f)
	}
}

// When a period ends by the clock, with no quote, a subscriber gets the
// period's final candle (from the source's Final), then the new one.
func TestCandleRollByClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeCandles()
		start := time.Now()
		end := start.Add(time.Minute)
		src.set(btc1m, candle(1000, end, 101, 1))
		fin := candle(1000, end, 99, 1)
		fin.High, fin.Closed = 120, true // the source saw more than the hub sent
		src.final[btc1m] = fin
		src.next[btc1m] = candle(2000, end.Add(time.Minute), 99, 1)
		e := candleEnv(t, src, nil)
		r := newRecorder()
		c := e.connect(t, r)
		if err := c.SubscribeCandles(context.Background(), nil, []string{"KRW-BTC"}, []quotehub.Interval{quotehub.Minute1}); err != nil {
			t.Fatal(err)
		}
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 1, 101)}) // the pump learns the period's end
		synctest.Wait()
		time.Sleep(time.Until(end) + time.Millisecond)
		synctest.Wait()
		got := r.candles(t)
		if len(got) != 3 || got[0].T != 1000 || got[0].Closed ||
			got[1].T != 1000 || !got[1].Closed || got[1].H != 120 || got[1].C != 99 ||
			got[2].T != 2000 || got[2].Closed {
			t.Fatalf("candles = %v, want the open one, its final one (h 120), the next one", got)
		}
	})
}

// A reader that does not read while a period ends gets, once it reads
// again, the ended period's final candle and then the newest candle of
// the next one: the open candles in between are conflated away, the final
// one is not.
func TestCandleRollSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeCandles()
		end := time.Now().Add(time.Minute)
		src.set(btc1m, candle(1000, end, 100, 1))
		e := candleEnv(t, src, nil)
		r := newRecorder()
		gate := make(chan struct{})
		r.setGate(gate)
		c := e.connect(t, r)
		if err := c.SubscribeCandles(context.Background(), nil, []string{"KRW-BTC"}, []quotehub.Interval{quotehub.Minute1}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the writer is stuck in its first write
		first := len(r.candles(t))
		step := func(v hub.CandleValue, seq uint64) {
			src.set(btc1m, v)
			e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", seq, v.Close)})
			synctest.Wait()
		}
		step(candle(1000, end, 101, 2), 2)
		step(candle(1000, end, 102, 3), 3)
		// A quote of the next period: the final candle of the first, then
		// the next one's, and more of it.
		fin := candle(1000, end, 102, 3)
		fin.Closed = true
		src.mu.Lock()
		src.final[btc1m] = fin
		src.mu.Unlock()
		step(candle(2000, end.Add(time.Minute), 103, 4), 4)
		step(candle(2000, end.Add(time.Minute), 104, 5), 5)
		step(candle(2000, end.Add(time.Minute), 105, 6), 6)
		r.setGate(nil)
		close(gate)
		synctest.Wait()
		got := r.candles(t)[first:]
		if len(got) != 2 || got[0].T != 1000 || !got[0].Closed || got[0].C != 102 || got[1].T != 2000 || got[1].Closed || got[1].C != 105 {
			t.Fatalf("after the pause: %v, want the final candle of t=1000, then t=2000 at 105", got)
		}
		// Candles: open 101 by 102, 102 by the final one, 103 by 104 by
		// 105, and the snapshot by 101 unless the first write took it;
		// quotes: seq 2 by 3 by … by 6.
		want := 4.0 + 4
		if first == 0 {
			want++
		}
		if n := testutil.ToFloat64(e.m.Conflated); n != want {
			t.Errorf("conflated = %v, want %v", n, want)
		}
	})
}

func TestCandleUnsubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeCandles()
		end := time.Now().Add(time.Hour)
		src.set(btc1m, candle(1000, end, 100, 1))
		src.set(btc1d, candle(500, end, 100, 1))
		e := candleEnv(t, src, nil)
		r := newRecorder()
		c := e.connect(t, r)
		ctx := context.Background()
		c.HandleFrame(ctx, []byte(`{"op":"subscribe","symbols":["KRW-BTC"],"candles":["1m","1d"]}`), false)
		c.HandleFrame(ctx, []byte(`{"op":"unsubscribe","id":"u1","symbols":["KRW-BTC"],"candles":["1m"]}`), false)
		synctest.Wait()
		f := r.frames(t)
		if len(f) != 2 || f[1]["type"] != "unsubscribed" || fmt.Sprint(f[1]["candles"]) != "[1m]" || fmt.Sprint(f[1]["symbols"]) != "[KRW-BTC]" {
			t.Fatalf("frames = %v", f)
		}
		if c.Subscribed() != 1 || c.CandleStreams() != 1 || e.hub.WatchedSeries() != 1 {
			t.Fatalf("subscribed %d, streams %d, watched %d", c.Subscribed(), c.CandleStreams(), e.hub.WatchedSeries())
		}
		n := len(r.candles(t))
		src.set(btc1m, candle(1000, end, 101, 2))
		src.set(btc1d, candle(500, end, 101, 2))
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 2, 101)})
		synctest.Wait()
		if got := r.candles(t)[n:]; len(got) != 1 || got[0].Interval != "1d" {
			t.Fatalf("after unsubscribing 1m: %v, want the 1d candle only", got)
		}
		// An unsubscribe without candles drops the symbol and its streams,
		// with what of them waits in the outbox.
		gate := make(chan struct{})
		r.setGate(gate)
		c.SendControl([]byte(`{"type":"x"}`))
		synctest.Wait() // the writer is stuck
		src.set(btc1d, candle(500, end, 102, 3))
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 3, 102)})
		synctest.Wait()
		c.HandleFrame(ctx, []byte(`{"op":"unsubscribe","symbols":["KRW-BTC"]}`), false)
		r.setGate(nil)
		close(gate)
		synctest.Wait()
		if got := r.candles(t)[n:]; len(got) != 1 {
			t.Fatalf("a candle queued before the unsubscribe went out after it: %v", got)
		}
		if c.Subscribed() != 0 || c.CandleStreams() != 0 || e.hub.WatchedSeries() != 0 {
			t.Fatalf("subscribed %d, streams %d, watched %d", c.Subscribed(), c.CandleStreams(), e.hub.WatchedSeries())
		}
	})
}

// Streams come and go from many clients at once; the registry ends empty.
func TestCandleChurn(t *testing.T) {
	src := newFakeCandles()
	src.set(btc1m, candle(1000, time.Now().Add(time.Hour), 100, 1))
	e := candleEnv(t, src, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := e.hub.NewClient(&discard{}, "ws")
				c.StartOnDemand(func(error) {})
				_ = c.SubscribeCandles(context.Background(), nil, []string{"KRW-BTC", "KRW-ETH"}, []quotehub.Interval{quotehub.Minute1, quotehub.Day1})
				e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", uint64(i+2), 100)})
				if i%2 == 0 {
					_ = c.Unsubscribe(nil, []string{"KRW-ETH"})
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	if n := e.hub.WatchedSeries(); n != 0 {
		t.Fatalf("%d series still watched after every client closed", n)
	}
}
