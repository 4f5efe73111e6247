package web

import (
	"context"
	"fmt"
	"quotehub/web/internal/wire"
	"strings"
	"testing"
	"time"
)

// TestLiveness walks the ping timer's state machine through each way a
// peer can behave.
func TestLiveness(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	drained := wire.State{Known: true}
	pending := func(acked uint64) wire.State { return wire.State{Known: true, Outstanding: true, Acked: acked} }
	newL := func() *liveness {
		l := &liveness{every: 1000 * time.Millisecond, timeout: 300 * time.Millisecond, stall: 2000 * time.Millisecond}
		l.start(t0)
		return l
	}
	type step struct {
		ms       int
		answered bool
		s        wire.State
		want     verdict
		sent     bool          // for sendPing: the ping went out
		wait     time.Duration // 0: not checked
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"AnsweringPeer", []step{
			{ms: 1000, s: drained, want: sendPing, sent: true, wait: 300 * time.Millisecond},
			{ms: 1300, answered: true, s: drained, want: waitMore, wait: 700 * time.Millisecond},
			{ms: 2000, answered: true, s: drained, want: sendPing, sent: true},
			{ms: 2300, answered: true, s: drained, want: waitMore},
		}},
		{"SilentPeerThatHasEverything", []step{
			{ms: 1000, s: drained, want: sendPing, sent: true},
			{ms: 1200, s: drained, want: waitMore, wait: 100 * time.Millisecond},
			{ms: 1300, s: drained, want: closeDead},
		}},
		{"ReadingSlowlyBehindData", []step{ // acks move: no pong needed while data waits
			{ms: 1000, s: pending(100), want: sendPing, sent: true},
			{ms: 1300, s: pending(200), want: waitMore, wait: 300 * time.Millisecond},
			{ms: 1600, s: pending(300), want: waitMore},
			{ms: 2900, s: pending(400), want: waitMore},
			{ms: 4800, s: pending(500), want: waitMore},
			{ms: 5000, s: drained, want: waitMore, wait: 100 * time.Millisecond}, // the pong gets its timeout from the last look behind data
			{ms: 5050, answered: true, s: drained, want: sendPing, sent: true},   // answered; the next ping was due
			{ms: 5100, s: drained, want: waitMore, wait: 250 * time.Millisecond},
		}},
		{"StalledBehindData", []step{
			{ms: 1000, s: pending(100), want: sendPing, sent: true},
			{ms: 1300, s: pending(100), want: waitMore},
			{ms: 2999, s: pending(100), want: waitMore, wait: time.Millisecond},
			{ms: 3000, s: pending(100), want: closeStalled},
		}},
		{"StallClockRestartsWhenDrained", []step{
			{ms: 1000, s: pending(100), want: sendPing, sent: true},
			{ms: 1100, answered: true, s: drained, want: waitMore},
			{ms: 1200, answered: true, s: pending(100), want: waitMore, wait: 300 * time.Millisecond},
			{ms: 3100, answered: true, s: pending(100), want: sendPing, sent: false}, // 1.9 s since the drain; the ping does not fit
			{ms: 3200, answered: true, s: pending(100), want: closeStalled},
		}},
		{"PingThatDidNotFitIsTriedAgain", []step{
			{ms: 1000, s: pending(100), want: sendPing, sent: false, wait: 300 * time.Millisecond},
			{ms: 1300, s: pending(150), want: sendPing, sent: true},
			{ms: 1600, answered: true, s: drained, want: waitMore},
		}},
		{"UnknownSocketFallsBackToThePong", []step{
			{ms: 1000, s: wire.State{}, want: sendPing, sent: true},
			{ms: 1300, s: wire.State{}, want: closeDead},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newL()
			for i, st := range tc.steps {
				now := at(st.ms)
				got := l.look(now, st.answered, st.s)
				if got != st.want {
					t.Fatalf("step %d (t=%d ms): verdict %d, want %d", i, st.ms, got, st.want)
				}
				if got == sendPing && st.sent {
					l.pinged(now)
				}
				if w := l.wait(now); st.wait != 0 && w != st.wait {
					t.Fatalf("step %d (t=%d ms): look again after %v, want %v", i, st.ms, w, st.wait)
				}
			}
		})
	}
}

// fillSocket writes 64 KiB messages through tr without blocking until the
// socket keeps a rest, then finishes that rest on a goroutine (as the
// hub's writer does) and returns how many messages there are and the
// channel FinishWrite's error arrives on.
func fillSocket(t *testing.T, tr *wsTransport) (int, <-chan error) {
	t.Helper()
	pad := strings.Repeat("x", 64<<10)
	for sent := 1; sent <= 2000; sent++ {
		done, err := tr.TryWrite([][]byte{[]byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, sent, pad))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			finished := make(chan error, 1)
			go func() { finished <- tr.FinishWrite() }()
			return sent, finished
		}
	}
	t.Fatal("the socket never filled")
	return 0, nil
}

// TestPingsJudgeAReadingPeerByItsAcks: a peer reading slowly through data
// that fills its socket gets the server's ping long after the pong
// timeout; it is alive all the same, because what it acknowledges moves.
func TestPingsJudgeAReadingPeerByItsAcks(t *testing.T) {
	p := newWSPair(t)
	n, finished := fillSocket(t, p.t)
	stalled := make(chan struct{}, 1)
	// The pong timeout is 2 s, not less: once the data is read, a pong must
	// come within it, and a machine under heavy load (2 cores at a load of
	// 10) has delayed a test process by more than half a second. The read
	// below takes about 50 ms × 60 messages, well beyond it.
	p.t.startPings(20*time.Millisecond, 2*time.Second, 10*time.Second, func() { stalled <- struct{}{} })
	start := time.Now()
	for i := range n {
		time.Sleep(50 * time.Millisecond) // a slow reader: a ping behind the data is answered long after 2 s
		if _, err := p.read(t); err != nil {
			t.Fatalf("message %d of %d: %v (the server closed a peer that was reading)", i+1, n, err)
		}
	}
	p.client.CloseRead(context.Background()) // go on reading at once: the ping follows the data
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("read %d messages of 64 KiB in %v with a 2 s pong timeout", n, took)
	if took < 2*time.Second {
		t.Fatalf("the read took %v, less than the pong timeout: the test proves nothing", took)
	}
	// Still open and answering: a ping of the client's own gets its pong.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.client.Ping(ctx); err != nil {
		t.Fatalf("the connection did not survive the slow read: %v", err)
	}
	select {
	case <-stalled:
		t.Fatal("a reading peer was taken for a stalled one")
	case <-p.t.readDone:
		t.Fatal("the server closed a reading peer")
	default:
	}
}

// TestPingsCloseAStalledPeer: a peer that takes nothing while data waits
// for it is reported as stalled after the stall time, not closed as dead
// for a pong that cannot reach it.
func TestPingsCloseAStalledPeer(t *testing.T) {
	p := newWSPair(t)
	_, finished := fillSocket(t, p.t)
	stalled := make(chan time.Time, 1)
	start := time.Now()
	p.t.startPings(20*time.Millisecond, 60*time.Millisecond, 300*time.Millisecond, func() { stalled <- time.Now() })
	select {
	case at := <-stalled:
		if d := at.Sub(start); d < 300*time.Millisecond {
			t.Errorf("reported stalled after %v, before the stall time of 300 ms", d)
		} else {
			t.Logf("reported stalled after %v (stall time 300 ms)", d)
		}
	case <-p.t.readDone:
		t.Fatal("the connection was closed as dead instead of reported as stalled")
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that reads nothing was never reported as stalled")
	}
	p.t.conn.CloseNow() // what the hub's AbortSlow ends with
	if err := <-finished; err == nil {
		t.Error("FinishWrite to a closed connection reported success")
	}
}
