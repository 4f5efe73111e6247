package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"quotehub"
	"quotehub/hub"
	"quotehub/internal/poll"
)

// tryRecorder is a hub.TryWriter that records which call wrote each batch
// ("try", "finish" or "write") and checks the contract: after a TryWrite
// that kept a rest, nothing is written before FinishWrite. When full is
// set, TryWrite keeps everything (a full socket) and FinishWrite waits for
// gate.
type tryRecorder struct {
	mu        sync.Mutex
	calls     []string
	quotes    []hub.Update
	controls  int
	kept      bool
	full      bool
	gate      chan struct{}
	tryErr    error
	finishErr error
	violation string
}

func (r *tryRecorder) record(how string, controls [][]byte, quotes []*hub.Update) {
	if r.kept && how != "finish" {
		r.violation = how + " while a rest was kept"
	}
	r.calls = append(r.calls, how)
	r.controls += len(controls)
	for _, u := range quotes {
		r.quotes = append(r.quotes, *u)
	}
}

func (r *tryRecorder) TryWrite(controls [][]byte, quotes []*hub.Update) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tryErr != nil {
		return true, r.tryErr
	}
	if r.full {
		if r.kept {
			r.violation = "try while a rest was kept"
		}
		r.kept = true
		r.calls = append(r.calls, "try(kept)")
		r.controls += len(controls)
		for _, u := range quotes {
			r.quotes = append(r.quotes, *u)
		}
		return false, nil
	}
	r.record("try", controls, quotes)
	return true, nil
}

func (r *tryRecorder) FinishWrite() error {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.kept {
		r.violation = "finish without a kept rest"
	}
	r.kept, r.full = false, false
	r.calls = append(r.calls, "finish")
	return r.finishErr
}

func (r *tryRecorder) Write(controls [][]byte, quotes []*hub.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("write", controls, quotes)
	return nil
}

func (r *tryRecorder) Abort(int, string) {}

func (r *tryRecorder) snapshot() (calls []string, quotes []hub.Update, controls int, violation string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...), append([]hub.Update(nil), r.quotes...), r.controls, r.violation
}

// pooledClient registers an on-demand client on tr; its end func records
// the error and closes the client, as the WebSocket server's does.
func pooledClient(t *testing.T, e *env, tr hub.Transport) (*hub.Client, <-chan error) {
	t.Helper()
	c := e.hub.NewClient(tr, "ws")
	if c == nil {
		t.Fatal("NewClient refused")
	}
	ended := make(chan error, 1)
	c.StartOnDemand(func(err error) {
		ended <- err
		go c.Close()
	})
	t.Cleanup(c.Close)
	return c, ended
}

// latestSeqs returns the highest seq delivered per symbol and fails on a
// regression.
func latestSeqs(t *testing.T, qs []hub.Update) map[string]uint64 {
	t.Helper()
	last := map[string]uint64{}
	for _, q := range qs {
		if q.Seq < last[q.Symbol] {
			t.Fatalf("%s seq went back from %d to %d", q.Symbol, last[q.Symbol], q.Seq)
		}
		last[q.Symbol] = q.Seq
	}
	return last
}

func TestPoolWritesEveryClient(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.Writers = 2 })
	syms := []string{"KRW-BTC", "AAPL"}
	var recs []*tryRecorder
	for range 50 {
		r := &tryRecorder{}
		c, _ := pooledClient(t, e, r)
		if err := c.Subscribe(context.Background(), nil, syms); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	const rounds = 20
	for seq := uint64(1); seq <= rounds; seq++ {
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", seq, 1), quote("AAPL", seq, 2)})
	}
	for i, r := range recs {
		poll.Until(t, 5*time.Second, fmt.Sprintf("client %d's last quotes", i), func() bool {
			_, qs, _, _ := r.snapshot()
			last := map[string]uint64{}
			for _, q := range qs {
				last[q.Symbol] = q.Seq
			}
			return last["KRW-BTC"] == rounds && last["AAPL"] == rounds
		})
		calls, qs, controls, violation := r.snapshot()
		latestSeqs(t, qs)
		if violation != "" || controls != 1 {
			t.Errorf("client %d: %s; %d control frames, want the subscribed frame", i, violation, controls)
		}
		for _, how := range calls {
			if how != "try" {
				t.Fatalf("client %d written by %v: a pooled client with room in its socket is written by TryWrite only", i, calls)
			}
		}
	}
	if got := testutil.ToFloat64(e.m.Frames.WithLabelValues("ws")); got == 0 {
		t.Error("no frames counted")
	}
}

// A client whose socket is full continues on a goroutine of its own: the
// pool goes on writing the others, and the stuck client's next batches
// follow its rest, in order.
func TestPoolHandsOffAFullSocket(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.Writers = 1 })
	gate := make(chan struct{})
	stuck := &tryRecorder{full: true, gate: gate}
	sc, _ := pooledClient(t, e, stuck)
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate) // before the client's Close, which waits for the stuck write
	if err := sc.Subscribe(context.Background(), nil, []string{"AAPL"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the stuck client's first write", func() bool {
		calls, _, _, _ := stuck.snapshot()
		return len(calls) == 1
	})
	other := &tryRecorder{}
	oc, _ := pooledClient(t, e, other)
	if err := oc.Subscribe(context.Background(), nil, []string{"AAPL"}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		e.hub.Publish([]quotehub.Quote{quote("AAPL", seq, 1)})
	}
	poll.Until(t, 5*time.Second, "the other client's quotes while one socket is full", func() bool {
		_, qs, _, _ := other.snapshot()
		return len(qs) > 0 && qs[len(qs)-1].Seq == 5
	})
	if calls, _, _, _ := stuck.snapshot(); len(calls) != 1 {
		t.Fatalf("the stuck client was written %v before its rest went out", calls)
	}
	openGate()
	poll.Until(t, 5*time.Second, "the stuck client's quotes after its rest", func() bool {
		_, qs, _, _ := stuck.snapshot()
		return len(qs) > 0 && qs[len(qs)-1].Seq == 5
	})
	calls, qs, _, violation := stuck.snapshot()
	latestSeqs(t, qs)
	if violation != "" || len(calls) < 3 || calls[0] != "try(kept)" || calls[1] != "finish" || calls[2] != "write" {
		t.Fatalf("calls %v (%s), want try(kept), finish, then writes from the client's own goroutine", calls, violation)
	}
	// Once drained, the client is back on the pool.
	e.hub.Publish([]quotehub.Quote{quote("AAPL", 6, 1)})
	poll.Until(t, 5*time.Second, "seq 6", func() bool {
		_, qs, _, _ := stuck.snapshot()
		return qs[len(qs)-1].Seq == 6
	})
	if calls, _, _, _ := stuck.snapshot(); calls[len(calls)-1] != "try" {
		t.Errorf("after draining, the client was written by %q, want the pool's try", calls[len(calls)-1])
	}
}

func TestPoolWriteErrorsEndTheWriter(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name string
		tr   *tryRecorder
	}{
		{"try", &tryRecorder{tryErr: boom}},
		{"finish", &tryRecorder{full: true, finishErr: boom}},
	}
	for _, tc := range cases {
		// In a bubble: synctest.Wait returns once every goroutine the hub
		// started is blocked, so "end is not called again" is checked after
		// anything a second end could come from has run, not after a sleep.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, func(o *hub.Options) { o.Writers = 1 })
				c, ended := pooledClient(t, e, tc.tr)
				c.SendControl([]byte(`{"type":"welcome"}`))
				synctest.Wait()
				select {
				case err := <-ended:
					if !errors.Is(err, boom) {
						t.Fatalf("end(%v), want the write's error", err)
					}
				default:
					t.Fatal("a failed write did not end the writer")
				}
				c.SendControl([]byte(`{"type":"pong"}`)) // no writer any more: nothing is written, nothing hangs
				synctest.Wait()
				select {
				case err := <-ended:
					t.Fatalf("end called twice (%v)", err)
				default:
				}
				if _, _, _, violation := tc.tr.snapshot(); violation != "" {
					t.Error(violation)
				}
			})
		})
	}
}

// Shutdown closes pooled clients with 1001 after what was queued, and
// stops the pool; a writer woken after that runs on a goroutine.
func TestPoolShutdown(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.Writers = 2 })
	r := &tryRecorder{}
	c, ended := pooledClient(t, e, r)
	c.SendControl([]byte(`{"type":"welcome"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ce, ok := hub.IsClose(<-ended)
	if !ok || ce.Code != hub.CloseGoingAway {
		t.Fatalf("ended with %v, want a 1001 close", ce)
	}
	if _, _, controls, _ := r.snapshot(); controls != 1 {
		t.Errorf("%d control frames written before the close, want 1", controls)
	}

	// A client that comes after the pool stopped is written all the same,
	// from a goroutine of its own.
	r2 := &tryRecorder{}
	c2, _ := pooledClient(t, e, r2)
	c2.SendControl([]byte(`{"type":"welcome"}`))
	poll.Until(t, 5*time.Second, "a write after the pool stopped", func() bool {
		calls, _, n, _ := r2.snapshot()
		return n == 1 && len(calls) == 1 && calls[0] == "write"
	})
}

func TestPoolOff(t *testing.T) {
	e := newEnv(t, func(o *hub.Options) { o.Writers = -1 })
	r := &tryRecorder{}
	c, _ := pooledClient(t, e, r)
	c.SendControl([]byte(`{"type":"welcome"}`))
	poll.Until(t, 5*time.Second, "the welcome", func() bool {
		_, _, n, _ := r.snapshot()
		return n == 1
	})
	if calls, _, _, _ := r.snapshot(); len(calls) != 1 || calls[0] != "write" {
		t.Errorf("with Writers < 0 the client was written by %v, want write", calls)
	}
}
