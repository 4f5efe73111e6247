package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/hub"
	"quotehub/internal/poll"
	"quotehub/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a hub.Transport that records what the writer hands it. When
// gate is set, Write waits on it before returning (a client that does not
// read).
type recorder struct {
	mu       sync.Mutex
	controls [][]byte
	batches  [][]hub.Update
	gate     chan struct{}
	writes   chan struct{}
	aborted  chan int
}

func newRecorder() *recorder {
	return &recorder{writes: make(chan struct{}, 1000), aborted: make(chan int, 1)}
}

func (r *recorder) Write(controls [][]byte, quotes []*hub.Update) error {
	r.mu.Lock()
	for _, c := range controls {
		r.controls = append(r.controls, append([]byte(nil), c...))
	}
	if len(quotes) > 0 {
		b := make([]hub.Update, len(quotes))
		for i, u := range quotes {
			b[i] = *u
		}
		r.batches = append(r.batches, b)
	}
	gate := r.gate
	r.mu.Unlock()
	select {
	case r.writes <- struct{}{}:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case code := <-r.aborted:
			r.aborted <- code
			return errors.New("aborted")
		}
	}
	return nil
}

func (r *recorder) Abort(code int, _ string) { r.aborted <- code }

func (r *recorder) setGate(g chan struct{}) {
	r.mu.Lock()
	r.gate = g
	r.mu.Unlock()
}

// frames returns the recorded control frames decoded.
func (r *recorder) frames(t *testing.T) []map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, c := range r.controls {
		var m map[string]any
		if err := json.Unmarshal(c, &m); err != nil {
			t.Fatalf("control frame %s is not JSON: %v", c, err)
		}
		out = append(out, m)
	}
	return out
}

func (r *recorder) quotes() []hub.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hub.Update
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

// settle is a synchronising round trip through c's outbox: a marker
// control frame queued now is written with or after everything queued
// before it (a publish or a subscribe queues its quotes before it
// returns), so once the marker is recorded, nothing those calls queued is
// still to come. It is how a test checks that nothing else arrives.
func settle(t *testing.T, c *hub.Client, r *recorder) {
	t.Helper()
	n := settles.Add(1)
	c.SendControl(fmt.Appendf(nil, `{"type":"settle","n":%d}`, n))
	poll.Until(t, 5*time.Second, "the settle marker", func() bool {
		return slices.ContainsFunc(r.frames(t), func(f map[string]any) bool {
			return f["type"] == "settle" && f["n"] == float64(n)
		})
	})
}

var settles atomic.Int64

var testSymbols = []quotehub.SymbolInfo{
	{Symbol: "KRW-BTC", Name: "Bitcoin", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "KRW-ETH", Name: "Ethereum", Exchange: quotehub.ExchangeUpbit, Currency: "KRW"},
	{Symbol: "AAPL", Name: "Apple", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
	{Symbol: "MSFT", Name: "Microsoft", Exchange: quotehub.ExchangeNASDAQ, Currency: "USD"},
	{Symbol: "005930.KS", Name: "Samsung", Exchange: quotehub.ExchangeKRX, Currency: "KRW"},
}

type env struct {
	hub   *hub.Hub
	cache *memory.Cache
	m     *hub.Metrics
}

func newEnv(t *testing.T, mod func(*hub.Options)) *env {
	t.Helper()
	e := &env{cache: memory.NewCache(), m: hub.NewMetrics(nil)}
	opts := hub.Options{Cache: e.cache, Catalog: memory.NewCatalog(testSymbols), Node: "test", Metrics: e.m}
	if mod != nil {
		mod(&opts)
	}
	e.hub = hub.New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.hub.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// connect registers a client and runs its writer until the test ends.
func (e *env) connect(t *testing.T, r *recorder) *hub.Client {
	t.Helper()
	c := e.hub.NewClient(r, "ws")
	if c == nil {
		t.Fatal("NewClient refused a client below the limit")
	}
	startWriter(c)
	t.Cleanup(c.Close) // waits for a running writer
	return c
}

// startWriter starts c's on-demand writer; the channel gets the error it
// ends with, if it ends before the client closes.
func startWriter(c *hub.Client) <-chan error {
	ended := make(chan error, 1)
	c.StartOnDemand(func(err error) { ended <- err })
	return ended
}

func quote(sym string, seq uint64, price float64) quotehub.Quote {
	return quotehub.Quote{Symbol: sym, Price: price, Currency: "KRW", TradeTime: 1763726400000 + int64(seq),
		FetchedAt: time.Now().UnixMilli(), Seq: seq, Source: "test", Market: quotehub.MarketOpen}
}

func TestSubscribe(t *testing.T) {
	t.Run("SubscribedThenSnapshotThenLive", func(t *testing.T) {
		e := newEnv(t, nil)
		if _, err := e.cache.Put(context.Background(), quote("KRW-BTC", 7, 100)); err != nil {
			t.Fatal(err)
		}
		r := newRecorder()
		c := e.connect(t, r)
		if err := c.Subscribe(context.Background(), json.RawMessage(`"r1"`), []string{"krw-btc", "KRW-ETH", "bad!", "NOPE", "KRW-BTC"}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 5*time.Second, "snapshot", func() bool { return len(r.quotes()) == 1 })
		f := r.frames(t)
		if len(f) != 1 || f[0]["type"] != "subscribed" || f[0]["id"] != "r1" {
			t.Fatalf("frames = %v, want one subscribed with id r1", f)
		}
		if got := fmt.Sprint(f[0]["symbols"]); got != "[KRW-BTC KRW-ETH]" {
			t.Errorf("symbols = %s", got)
		}
		rej := f[0]["rejected"].([]any)
		if len(rej) != 2 || rej[0].(map[string]any)["code"] != "invalid_symbol" || rej[0].(map[string]any)["symbol"] != "bad!" ||
			rej[1].(map[string]any)["code"] != "unknown_symbol" || rej[1].(map[string]any)["symbol"] != "NOPE" {
			t.Errorf("rejected = %v", rej)
		}
		if q := r.quotes()[0]; q.Symbol != "KRW-BTC" || q.Seq != 7 || !q.Snapshot {
			t.Errorf("snapshot = %+v", q)
		}
		e.hub.Publish([]quotehub.Quote{quote("KRW-ETH", 1, 5), quote("AAPL", 1, 5)})
		poll.Until(t, 5*time.Second, "live quote", func() bool { return len(r.quotes()) == 2 })
		if q := r.quotes()[1]; q.Symbol != "KRW-ETH" || q.Snapshot {
			t.Errorf("live = %+v", q)
		}
		if c.Subscribed() != 2 || e.hub.Subscribers("KRW-BTC") != 1 || e.hub.Subscribers("AAPL") != 0 {
			t.Errorf("subscribed=%d subscribers(KRW-BTC)=%d", c.Subscribed(), e.hub.Subscribers("KRW-BTC"))
		}
	})

	t.Run("ErrTooManyRefusedWhole", func(t *testing.T) {
		e := newEnv(t, func(o *hub.Options) { o.MaxSymbols = 3 })
		c := e.connect(t, newRecorder())
		ctx := context.Background()
		err := c.Subscribe(ctx, nil, []string{"KRW-BTC", "KRW-ETH", "AAPL", "bad!"})
		if quotehub.ErrorCode(err) != quotehub.ETooManySymbols {
			t.Fatalf("4 names: err = %v, want too_many_symbols", err)
		}
		if c.Subscribed() != 0 {
			t.Fatalf("a refused subscribe subscribed %d", c.Subscribed())
		}
		if err := c.Subscribe(ctx, nil, []string{"KRW-BTC", "KRW-ETH"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(ctx, nil, []string{"AAPL", "MSFT"}); quotehub.ErrorCode(err) != quotehub.ETooManySymbols {
			t.Fatalf("2+2 over 3: err = %v", err)
		}
		if err := c.Subscribe(ctx, nil, []string{"KRW-BTC", "krw-eth", "AAPL"}); err != nil {
			t.Fatalf("re-subscribing held symbols plus one: %v", err)
		}
		if c.Subscribed() != 3 {
			t.Fatalf("subscribed = %d, want 3", c.Subscribed())
		}
	})

	t.Run("ErrEmpty", func(t *testing.T) {
		e := newEnv(t, nil)
		c := e.connect(t, newRecorder())
		for _, raw := range [][]string{nil, {}, {"", "  "}} {
			if err := c.Subscribe(context.Background(), nil, raw); quotehub.ErrorCode(err) != quotehub.EBadRequest {
				t.Errorf("Subscribe(%q) = %v, want bad_request", raw, err)
			}
		}
	})
}

func TestUnsubscribe(t *testing.T) {
	e := newEnv(t, nil)
	r := newRecorder()
	c := e.connect(t, r)
	ctx := context.Background()
	if err := c.Subscribe(ctx, nil, []string{"KRW-BTC", "AAPL"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(json.RawMessage(`7`), []string{"krw-btc", "MSFT", " bad! "}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "unsubscribed", func() bool { return len(r.frames(t)) == 2 })
	f := r.frames(t)[1]
	if f["type"] != "unsubscribed" || f["id"] != float64(7) || fmt.Sprint(f["symbols"]) != "[KRW-BTC MSFT bad!]" {
		t.Errorf("frame = %v", f)
	}
	if c.Subscribed() != 1 || e.hub.Subscribers("KRW-BTC") != 0 {
		t.Errorf("after unsubscribe: held %d, KRW-BTC subscribers %d", c.Subscribed(), e.hub.Subscribers("KRW-BTC"))
	}
	e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 1, 1), quote("AAPL", 1, 1)})
	settle(t, c, r)
	if qs := r.quotes(); len(qs) != 1 || qs[0].Symbol != "AAPL" {
		t.Errorf("quotes after unsubscribe = %+v", qs)
	}
}

func TestSeq(t *testing.T) {
	t.Run("NeverLowerNeverTwice", func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.connect(t, r)
		if err := c.Subscribe(context.Background(), nil, []string{"KRW-BTC"}); err != nil {
			t.Fatal(err)
		}
		for _, seq := range []uint64{5, 3, 5, 6, 2} {
			e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", seq, float64(seq))})
			settle(t, c, r) // each written before the next: none conflated away
		}
		var seqs []uint64
		for _, q := range r.quotes() {
			seqs = append(seqs, q.Seq)
		}
		if fmt.Sprint(seqs) != "[5 6]" {
			t.Errorf("delivered seqs = %v, want [5 6]", seqs)
		}
	})

	t.Run("SnapshotRepeatedOnResubscribeNotLower", func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		if _, err := e.cache.Put(ctx, quote("KRW-BTC", 4, 1)); err != nil {
			t.Fatal(err)
		}
		r := newRecorder()
		c := e.connect(t, r)
		for i := range 2 {
			if err := c.Subscribe(ctx, nil, []string{"KRW-BTC"}); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 5*time.Second, "a snapshot", func() bool { return len(r.quotes()) == i+1 })
		}
		poll.Until(t, 5*time.Second, "two snapshots", func() bool { return len(r.quotes()) == 2 })
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", 9, 1)})
		poll.Until(t, 5*time.Second, "seq 9", func() bool { return len(r.quotes()) == 3 })
		// Unsubscribe and subscribe again: the cache still says 4, lower than
		// the 9 this connection has, so no snapshot goes out.
		if err := c.Unsubscribe(nil, []string{"KRW-BTC"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(ctx, nil, []string{"KRW-BTC"}); err != nil {
			t.Fatal(err)
		}
		settle(t, c, r)
		var seqs []uint64
		for _, q := range r.quotes() {
			seqs = append(seqs, q.Seq)
		}
		if fmt.Sprint(seqs) != "[4 4 9]" {
			t.Errorf("seqs = %v, want [4 4 9]", seqs)
		}
	})
}

func TestConflation(t *testing.T) {
	e := newEnv(t, nil)
	r := newRecorder()
	gate := make(chan struct{})
	r.setGate(gate)
	c := e.connect(t, r)
	syms := []string{"KRW-BTC", "KRW-ETH", "AAPL"}
	if err := c.Subscribe(context.Background(), nil, syms); err != nil {
		t.Fatal(err)
	}
	<-r.writes // the writer is now stuck in its first write (the subscribed frame)
	const n = 1000
	for seq := uint64(1); seq <= n; seq++ {
		for _, s := range syms {
			e.hub.Publish([]quotehub.Quote{quote(s, seq, float64(seq))})
		}
	}
	r.setGate(nil)
	close(gate)
	poll.Until(t, 5*time.Second, "the conflated batch", func() bool { return len(r.quotes()) == 3 })
	settle(t, c, r)
	qs := r.quotes()
	if len(qs) != 3 {
		t.Fatalf("delivered %d quotes, want the latest of each of 3 symbols", len(qs))
	}
	for _, q := range qs {
		if q.Seq != n {
			t.Errorf("%s delivered seq %d, want %d", q.Symbol, q.Seq, n)
		}
	}
	if got := testutil.ToFloat64(e.m.Conflated); got != 3*(n-1) {
		t.Errorf("conflated = %v, want %d", got, 3*(n-1))
	}
	if got := testutil.ToFloat64(e.m.Delivered.WithLabelValues("ws")); got != 3 {
		t.Errorf("delivered = %v, want 3", got)
	}
}

func TestSlowConsumerAborted(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.SlowTimeout = 50 * time.Millisecond })
	r := newRecorder()
	r.setGate(make(chan struct{})) // never opens: a client that never reads
	c := e.hub.NewClient(r, "ws")
	done := startWriter(c)
	c.SendControl([]byte(`{"type":"welcome"}`))
	select {
	case code := <-r.aborted:
		if code != hub.CloseSlowConsumer {
			t.Errorf("aborted with %d, want 4000", code)
		}
		r.aborted <- code
	case <-time.After(5 * time.Second):
		t.Fatal("a stuck writer was not aborted")
	}
	if err := <-done; err == nil {
		t.Error("the writer ended with nil after its write failed")
	}
	c.Close()
	if got := testutil.ToFloat64(e.m.SlowDisconnects); got != 1 {
		t.Errorf("slow disconnects = %v, want 1", got)
	}
}

// TestSlowButMovingNotAborted: the sweeper judges a write by when it last
// moved, not by when it began: a client whose write keeps moving (the
// transport reports progress as the socket takes more) stays however long
// the write takes, and is closed once it stops moving for SlowTimeout.
func TestSlowButMovingNotAborted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(o *hub.Options) { o.SlowTimeout = 50 * time.Millisecond })
		r := newRecorder()
		r.setGate(make(chan struct{})) // the write never finishes
		c := e.hub.NewClient(r, "ws")
		done := startWriter(c)
		c.SendControl([]byte(`{"type":"welcome"}`))
		synctest.Wait() // the writer is in its write
		aborted := func() bool {
			synctest.Wait() // every sweep due by now has run
			select {
			case code := <-r.aborted:
				r.aborted <- code
				return true
			default:
				return false
			}
		}
		for range 4 { // 160 ms in all, each step inside SlowTimeout of the last progress
			time.Sleep(40 * time.Millisecond)
			if aborted() {
				t.Fatal("a write that keeps moving was aborted")
			}
			c.Progressed()
		}
		time.Sleep(45 * time.Millisecond)
		if aborted() {
			t.Fatal("aborted 45 ms after the last progress; the limit is 50 ms")
		}
		time.Sleep(10 * time.Millisecond)
		if !aborted() {
			t.Fatal("a write that stopped moving for SlowTimeout was not aborted")
		}
		if err := <-done; err == nil {
			t.Error("the writer ended with nil after its write failed")
		}
		c.Close()
		if got := testutil.ToFloat64(e.m.SlowDisconnects); got != 1 {
			t.Errorf("slow disconnects = %v, want 1", got)
		}
	})
}

func TestHandleFrame(t *testing.T) {
	ctx := context.Background()
	t.Run("PingPongEchoesID", func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.connect(t, r)
		c.HandleFrame(ctx, []byte(`{"op":"ping","id":"r3"}`), false)
		c.HandleFrame(ctx, []byte(`{"op":"ping"}`), false)
		poll.Until(t, 5*time.Second, "pongs", func() bool { return len(r.frames(t)) == 2 })
		f := r.frames(t)
		if f[0]["type"] != "pong" || f[0]["id"] != "r3" || f[0]["time"] == nil {
			t.Errorf("pong = %v", f[0])
		}
		if _, has := f[1]["id"]; has {
			t.Errorf("a reply to a request without id has an id: %v", f[1])
		}
	})

	t.Run("ErrorsAreFramesWithCodes", func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.connect(t, r)
		cases := []struct {
			frame  string
			binary bool
			code   string
		}{
			{`{"op":`, false, "bad_request"},
			{`{"op":"dance","id":"x"}`, false, "bad_request"},
			{`{"op":"subscribe","id":"y"}`, false, "bad_request"},
			{`{"op":"subscribe","symbols":"KRW-BTC"}`, false, "bad_request"},
			{`{"op":"ping"}`, true, "bad_request"},
		}
		for _, tc := range cases {
			c.HandleFrame(ctx, []byte(tc.frame), tc.binary)
		}
		poll.Until(t, 5*time.Second, "error frames", func() bool { return len(r.frames(t)) == len(cases) })
		for i, f := range r.frames(t) {
			if f["type"] != "error" || f["code"] != cases[i].code || f["message"] == "" {
				t.Errorf("%s: frame = %v", cases[i].frame, f)
			}
		}
		if f := r.frames(t); f[1]["id"] != "x" || f[2]["id"] != "y" {
			t.Errorf("error replies lost their ids: %v %v", f[1], f[2])
		}
	})

	t.Run("ElevenErrorsClose1008", func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.hub.NewClient(r, "ws")
		done := startWriter(c)
		defer c.Close()
		for range 10 {
			c.HandleFrame(ctx, []byte(`nope`), false)
		}
		select {
		case err := <-done:
			t.Fatalf("closed after 10 errors: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		c.HandleFrame(ctx, []byte(`nope`), false)
		select {
		case err := <-done:
			ce, ok := hub.IsClose(err)
			if !ok || ce.Code != hub.ClosePolicy {
				t.Fatalf("the writer ended with %v, want close 1008", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no close after the 11th error")
		}
		if n := len(r.frames(t)); n != 11 {
			t.Errorf("%d error frames written before the close, want 11", n)
		}
	})

	t.Run("InvalidUTF8Closes1007", func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.hub.NewClient(r, "ws")
		done := startWriter(c)
		defer c.Close()
		c.HandleFrame(ctx, []byte(`{"op":"ping","id":"ok"}`), false)
		c.HandleFrame(ctx, []byte("{\"op\":\"ping\",\"id\":\"\xff\xfe\"}"), false)
		select {
		case err := <-done:
			ce, ok := hub.IsClose(err)
			if !ok || ce.Code != hub.CloseInvalidData {
				t.Fatalf("the writer ended with %v, want close 1007", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no close after a text frame of invalid UTF-8")
		}
		if f := r.frames(t); len(f) != 1 || f[0]["type"] != "pong" {
			t.Errorf("frames before the close: %v, want the one pong", f)
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		now := time.Unix(1_800_000_000, 0)
		var mu sync.Mutex
		e := newEnv(t, func(o *hub.Options) {
			o.OpsPerSecond, o.OpsBurst = 1, 2
			o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		})
		r := newRecorder()
		c := e.connect(t, r)
		for range 3 {
			c.HandleFrame(ctx, []byte(`{"op":"ping"}`), false)
		}
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		c.HandleFrame(ctx, []byte(`{"op":"ping"}`), false)
		poll.Until(t, 5*time.Second, "4 frames", func() bool { return len(r.frames(t)) == 4 })
		var types []string
		for _, f := range r.frames(t) {
			types = append(types, fmt.Sprint(f["type"], f["code"]))
		}
		if got := fmt.Sprint(types); got != "[pong<nil> pong<nil> errorrate_limited pong<nil>]" {
			t.Errorf("frames = %s", got)
		}
	})
}

// TestRegistryUnderChurn flips subscriptions from many clients at once and
// checks that the registry ends empty and the 0→1 / 1→0 events of every
// symbol alternate, starting with active and ending with idle.
func TestRegistryUnderChurn(t *testing.T) {
	var mu sync.Mutex
	events := map[string][]string{}
	record := func(kind string) func(string) {
		return func(s string) {
			mu.Lock()
			events[s] = append(events[s], kind)
			mu.Unlock()
		}
	}
	e := newEnv(t, func(o *hub.Options) { o.OnActive, o.OnIdle = record("active"), record("idle") })
	var wg sync.WaitGroup
	var flips atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.hub.NewClient(newRecorder(), "ws")
			startWriter(c)
			ctx := context.Background()
			for i := range 500 {
				s := testSymbols[(g+i)%len(testSymbols)].Symbol
				if err := c.Subscribe(ctx, nil, []string{s}); err != nil {
					t.Error(err)
				}
				if i%3 != 0 {
					if err := c.Unsubscribe(nil, []string{s}); err != nil {
						t.Error(err)
					}
				}
				flips.Add(1)
				e.hub.Publish([]quotehub.Quote{quote(s, uint64(i+1), 1)})
			}
			c.Close() // drops what is still held, after a running writer ends
		}()
	}
	wg.Wait()
	if got := e.hub.Symbols(); len(got) != 0 {
		t.Errorf("symbols still registered: %v", got)
	}
	if got := testutil.ToFloat64(e.m.Subscriptions); got != 0 {
		t.Errorf("subscriptions gauge = %v", got)
	}
	if e.hub.Connections() != 0 {
		t.Errorf("connections = %d", e.hub.Connections())
	}
	mu.Lock()
	defer mu.Unlock()
	for s, ev := range events {
		for i, k := range ev {
			if want := [2]string{"active", "idle"}[i%2]; k != want {
				t.Fatalf("%s: event %d is %s, want %s (%v)", s, i, k, want, ev)
			}
		}
		if ev[len(ev)-1] != "idle" {
			t.Errorf("%s ends %s", s, ev[len(ev)-1])
		}
	}
	if flips.Load() != 4000 {
		t.Errorf("flips = %d", flips.Load())
	}
}

func TestConnectionLimit(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.MaxConnections = 1 })
	c := e.hub.NewClient(newRecorder(), "ws")
	if c == nil {
		t.Fatal("first client refused")
	}
	if e.hub.NewClient(newRecorder(), "ws") != nil {
		t.Fatal("second client admitted over the limit")
	}
	c.Close()
	c2 := e.hub.NewClient(newRecorder(), "ws")
	if c2 == nil {
		t.Fatal("a client was refused after the first left")
	}
	c2.Close()
}

func TestShutdownEndsWriters(t *testing.T) {
	e := newEnv(t, nil)
	r := newRecorder()
	c := e.hub.NewClient(r, "sse")
	ended := startWriter(c)
	c.SendControl([]byte(`{"type":"welcome"}`))
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- e.hub.Shutdown(ctx)
	}()
	select {
	case err := <-ended:
		if ce, ok := hub.IsClose(err); !ok || ce.Code != hub.CloseGoingAway {
			t.Fatalf("the writer ended with %v, want close 1001", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not end the writer")
	}
	if len(r.frames(t)) != 1 {
		t.Errorf("%d control frames written before the close, want the welcome", len(r.frames(t)))
	}
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a client was still open")
	case <-time.After(20 * time.Millisecond):
	}
	c.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

// racingCache publishes a newer value of every symbol between the hub's
// registration of a subscriber and its snapshot read: the window in which
// a live update and the snapshot carry the same seq.
type racingCache struct {
	*memory.Cache
	hub func() *hub.Hub
}

func (c racingCache) GetMany(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	for _, s := range symbols {
		q := quote(s, 1, 1)
		if _, err := c.Put(ctx, q); err != nil {
			return nil, err
		}
		c.hub().Publish([]quotehub.Quote{q})
	}
	return c.Cache.GetMany(ctx, symbols)
}

func TestSnapshotNeverRepeatsALiveSeq(t *testing.T) {
	var h *hub.Hub
	cache := racingCache{Cache: memory.NewCache(), hub: func() *hub.Hub { return h }}
	h = hub.New(hub.Options{Cache: cache, Catalog: memory.NewCatalog(testSymbols)})
	defer h.Shutdown(context.Background())
	r := newRecorder()
	c := h.NewClient(r, "ws")
	startWriter(c)
	if err := c.Subscribe(context.Background(), nil, []string{"KRW-BTC"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the quote", func() bool { return len(r.quotes()) >= 1 })
	settle(t, c, r)
	if qs := r.quotes(); len(qs) != 1 || qs[0].Seq != 1 {
		t.Errorf("delivered %+v, want seq 1 once", qs)
	}
	c.Close()
}

// hookCache runs hook (once) inside the next snapshot read.
type hookCache struct {
	*memory.Cache
	mu   sync.Mutex
	hook func()
}

func (c *hookCache) GetMany(ctx context.Context, symbols []string) ([]quotehub.Quote, error) {
	c.mu.Lock()
	h := c.hook
	c.hook = nil
	c.mu.Unlock()
	if h != nil {
		h()
	}
	return c.Cache.GetMany(ctx, symbols)
}

// TestResubscribeWithAValueInTheOutbox: a value still waiting in the
// outbox when the client subscribes again goes out after the subscribed
// frame and is that symbol's snapshot; the snapshot read must not send the
// same seq again, even when the writer takes the frame and the value before
// the read returns.
func TestResubscribeWithAValueInTheOutbox(t *testing.T) {
	cache := &hookCache{Cache: memory.NewCache()}
	h := hub.New(hub.Options{Cache: cache, Catalog: memory.NewCatalog(testSymbols)})
	defer h.Shutdown(context.Background())
	ctx := context.Background()
	put := func(seq uint64) quotehub.Quote {
		q := quote("KRW-BTC", seq, float64(seq))
		if _, err := cache.Put(ctx, q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	put(1)
	r := newRecorder()
	c := h.NewClient(r, "ws")
	startWriter(c)
	defer c.Close()
	if err := c.Subscribe(ctx, nil, []string{"KRW-BTC"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the first snapshot", func() bool { return len(r.quotes()) == 1 })
	gate := make(chan struct{})
	r.setGate(gate)
	for len(r.writes) > 0 {
		<-r.writes
	}
	h.Publish([]quotehub.Quote{put(2)})
	<-r.writes                          // the writer is stuck writing seq 2
	h.Publish([]quotehub.Quote{put(3)}) // waits in the outbox
	cache.hook = func() {
		// Between the subscribed frame being queued and the snapshot read
		// returning, the writer takes the frame and seq 3 and writes them.
		r.setGate(nil)
		close(gate)
		<-r.writes
	}
	if err := c.Subscribe(ctx, nil, []string{"KRW-BTC"}); err != nil {
		t.Fatal(err)
	}
	// A ping answered proves the writer has written all that was queued.
	c.SendControl([]byte(`{"type":"pong"}`))
	poll.Until(t, 5*time.Second, "the pong", func() bool { return len(r.frames(t)) == 3 })
	seqs := []uint64{}
	for _, q := range r.quotes() {
		seqs = append(seqs, q.Seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("delivered seqs %v, want [1 2 3]: seq 3 once, as the snapshot of the re-subscribe", seqs)
	}
}
