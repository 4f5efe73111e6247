package hub_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"quotehub"
	"quotehub/hub"
)

// pacedTransport is a hub.TryWriter and hub.Pacer whose Hold answers
// what the test sets; it records the quotes written, the looks and the
// abort. onLook, when set, runs at each look (a peer that reads a little).
type pacedTransport struct {
	mu      sync.Mutex
	hold    time.Duration
	looks   int
	quotes  []hub.Update
	onLook  func()
	aborted chan int
}

func newPaced() *pacedTransport { return &pacedTransport{aborted: make(chan int, 1)} }

func (p *pacedTransport) Hold() time.Duration {
	p.mu.Lock()
	p.looks++
	d, f := p.hold, p.onLook
	p.mu.Unlock()
	if f != nil {
		f()
	}
	return d
}

func (p *pacedTransport) TryWrite(controls [][]byte, quotes []*hub.Update) (bool, error) {
	return true, p.Write(controls, quotes)
}

func (p *pacedTransport) FinishWrite() error { return nil }

func (p *pacedTransport) Write(_ [][]byte, quotes []*hub.Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range quotes {
		p.quotes = append(p.quotes, *u)
	}
	return nil
}

func (p *pacedTransport) Abort(code int, _ string) {
	select {
	case p.aborted <- code:
	default:
	}
}

func (p *pacedTransport) set(hold time.Duration, onLook func()) {
	p.mu.Lock()
	p.hold, p.onLook = hold, onLook
	p.mu.Unlock()
}

func (p *pacedTransport) state() (looks int, quotes []hub.Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.looks, append([]hub.Update(nil), p.quotes...)
}

func (p *pacedTransport) wasAborted() (int, bool) {
	select {
	case code := <-p.aborted:
		p.aborted <- code
		return code, true
	default:
		return 0, false
	}
}

// pacedEnv is a hub on synctest's clock with one paced client of AAPL.
func pacedEnv(t *testing.T, slow time.Duration) (*env, *pacedTransport, *hub.Client, <-chan error) {
	t.Helper()
	e := newEnv(t, func(o *hub.Options) { o.SlowTimeout = slow })
	p := newPaced()
	c, ended := pooledClient(t, e, p)
	if err := c.Subscribe(context.Background(), nil, []string{"AAPL"}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	return e, p, c, ended
}

func publishAAPL(e *env, from, to uint64) {
	for seq := from; seq <= to; seq++ {
		e.hub.Publish([]quotehub.Quote{quote("AAPL", seq, float64(seq))})
	}
}

// TestPacedWriterHoldsAndReleases: while the pacer holds, nothing is
// written and newer quotes replace older ones in the outbox; an offer
// does not wake a held writer (the pacer is not asked again), the hub's
// wheel does once the hold has run its time, and once the pacer lets go
// the wheel's wake writes the newest quote without waiting for another
// offer.
func TestPacedWriterHoldsAndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, _, _ := pacedEnv(t, time.Minute)
		p.set(100*time.Millisecond, nil)
		publishAAPL(e, 1, 5)
		synctest.Wait()
		looks0, qs := p.state()
		if len(qs) != 0 {
			t.Fatalf("a held writer wrote %v", qs)
		}
		publishAAPL(e, 6, 6) // an offer to a held writer only fills its outbox
		synctest.Wait()
		if looks, _ := p.state(); looks != looks0 {
			t.Fatalf("looks %d after an offer to a held writer, want %d (no wake)", looks, looks0)
		}
		time.Sleep(100 * time.Millisecond) // the wheel wakes it: the pacer looks again, still held
		synctest.Wait()
		if looks, qs := p.state(); looks != looks0+1 || len(qs) != 0 {
			t.Fatalf("after the hold: looks %d (want %d), written %v", looks, looks0+1, qs)
		}
		p.set(0, nil)
		time.Sleep(100 * time.Millisecond) // no offer: the wheel alone releases it
		synctest.Wait()
		_, qs = p.state()
		if len(qs) != 1 || qs[0].Seq != 6 {
			t.Fatalf("released writer wrote %v, want the newest quote (seq 6) alone", qs)
		}
		if got := testutil.ToFloat64(e.m.Conflated); got != 5 {
			t.Errorf("conflated %v, want 5", got)
		}
		if got := testutil.ToFloat64(e.m.SlowDisconnects); got != 0 {
			t.Errorf("slow disconnects %v, want 0", got)
		}
	})
}

// TestPacedWriterResume: Resume ends a hold at once, long before the
// wheel would: the pacer looks again and the newest quote goes out; the
// writer leaves the wheel (nothing wakes it later). Resume of a writer that
// is not held does nothing.
func TestPacedWriterResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, c, _ := pacedEnv(t, time.Minute)
		c.Resume() // not held: nothing to do
		synctest.Wait()
		p.set(time.Hour, nil)
		publishAAPL(e, 1, 3)
		synctest.Wait()
		looks0, qs := p.state()
		if len(qs) != 0 {
			t.Fatalf("a held writer wrote %v", qs)
		}
		p.set(0, nil)
		c.Resume()
		synctest.Wait()
		looks, qs := p.state()
		if looks != looks0+1 || len(qs) != 1 || qs[0].Seq != 3 {
			t.Fatalf("after Resume: looks %d (want %d), written %v (want seq 3 alone)", looks, looks0+1, qs)
		}
		time.Sleep(2 * time.Hour) // the wheel has nothing left to wake
		synctest.Wait()
		if looks2, _ := p.state(); looks2 != looks {
			t.Errorf("the wheel woke a resumed writer: looks %d, want %d", looks2, looks)
		}
	})
}

// TestPacedWriterWheelOneTicker: many held clients cost the hub one
// goroutine, not a timer each; the wheel wakes each at its own time, and
// its goroutine ends once no client is held.
func TestPacedWriterWheelOneTicker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(o *hub.Options) { o.SlowTimeout = time.Minute })
		const n = 50
		ps := make([]*pacedTransport, n)
		for i := range ps {
			ps[i] = newPaced()
			c, _ := pooledClient(t, e, ps[i])
			if err := c.Subscribe(context.Background(), nil, []string{"AAPL"}); err != nil {
				t.Fatal(err)
			}
			ps[i].set(time.Duration(i+1)*50*time.Millisecond, nil)
		}
		synctest.Wait()
		before := runtime.NumGoroutine()
		publishAAPL(e, 1, 1)
		synctest.Wait()
		if got := runtime.NumGoroutine(); got > before+1 {
			t.Fatalf("%d held clients run %d goroutines more than none, want at most 1 (the wheel)", n, got-before)
		}
		for i := range ps {
			ps[i].set(0, nil) // each lets go when next asked
		}
		// Client i is asked again only when its hold of (i+1) × 50 ms ends.
		for i := range ps {
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
			for j, p := range ps {
				_, qs := p.state()
				if want := j <= i; (len(qs) == 1) != want {
					t.Fatalf("after %d ms client %d wrote %v, want written %v", (i+1)*50, j, qs, want)
				}
			}
		}
		time.Sleep(time.Second) // nothing held: the wheel's goroutine ends
		synctest.Wait()
		if got := runtime.NumGoroutine(); got > before {
			t.Fatalf("goroutines %d with nothing held, want %d", got, before)
		}
	})
}

// TestPacedWriterControlNotHeld: a control frame for a held client goes
// out at once (it takes the writer off the wheel); the quotes held with it
// go too, and the pacer decides again at the next batch.
func TestPacedWriterControlNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, c, _ := pacedEnv(t, time.Minute)
		p.set(time.Hour, nil)
		publishAAPL(e, 1, 2)
		synctest.Wait()
		looks, _ := p.state()
		p.set(0, nil)
		c.SendControl([]byte(`{"type":"pong"}`))
		synctest.Wait()
		l, qs := p.state()
		if l != looks+1 || len(qs) != 1 || qs[0].Seq != 2 {
			t.Fatalf("after a control frame to a held writer: looks %d (want %d), written %v (want seq 2)", l, looks+1, qs)
		}
	})
}

// TestPacedWriterClosedWhileHeld: closing a client whose writer is held
// returns at once, and its retry timer does nothing afterwards.
func TestPacedWriterClosedWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, c, _ := pacedEnv(t, time.Minute)
		p.set(50*time.Millisecond, nil)
		publishAAPL(e, 1, 3)
		synctest.Wait()
		looks, _ := p.state()
		c.Close() // a deadlock here fails the bubble instead of hanging
		p.set(0, nil)
		time.Sleep(time.Second)
		synctest.Wait()
		if l, qs := p.state(); l != looks || len(qs) != 0 {
			t.Fatalf("after Close: looks %d → %d, written %v; want nothing more", looks, l, qs)
		}
	})
}

// TestPacedWriterPeerNeverReads: a held peer that reads nothing is closed
// by the sweeper with 4000, counted, SlowTimeout after the hold began; one
// that keeps reading a little (the pacer reports progress) is not, however
// long it stays held.
func TestPacedWriterPeerNeverReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, c, _ := pacedEnv(t, 50*time.Millisecond)
		p.set(10*time.Millisecond, c.Progressed) // held, but reading
		publishAAPL(e, 1, 1)
		for range 20 { // 200 ms, four times the slow timeout
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if code, ok := p.wasAborted(); ok {
			t.Fatalf("a held peer that keeps reading was closed with %d", code)
		}
		p.set(10*time.Millisecond, nil) // it stops reading
		time.Sleep(45 * time.Millisecond)
		synctest.Wait()
		if _, ok := p.wasAborted(); ok {
			t.Fatal("closed 45 ms after the last progress; the limit is 50 ms")
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		code, ok := p.wasAborted()
		if !ok || code != hub.CloseSlowConsumer {
			t.Fatalf("a held peer that reads nothing: aborted %v with %d, want 4000", ok, code)
		}
		if got := testutil.ToFloat64(e.m.SlowDisconnects); got != 1 {
			t.Errorf("slow disconnects %v, want 1", got)
		}
		if _, qs := p.state(); len(qs) != 0 {
			t.Errorf("a held writer wrote %v", qs)
		}
	})
}

// TestPacedWriterShutdownNotHeld: a requested close (the node's shutdown)
// is never held back: the writer writes what is pending and ends with 1001.
func TestPacedWriterShutdownNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, p, c, ended := pacedEnv(t, time.Minute)
		p.set(time.Hour, nil)
		publishAAPL(e, 1, 2)
		synctest.Wait()
		shut := make(chan error, 1)
		go func() { shut <- e.hub.Shutdown(context.Background()) }()
		err := <-ended
		if ce, ok := hub.IsClose(err); !ok || ce.Code != hub.CloseGoingAway {
			t.Fatalf("the held writer ended with %v, want close 1001", err)
		}
		if _, qs := p.state(); len(qs) != 1 || qs[0].Seq != 2 {
			t.Errorf("written before the close: %v, want seq 2", qs)
		}
		c.Close()
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	})
}
