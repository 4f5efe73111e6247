package web

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/web/internal/wire"
)

// wsPaced is a paced WebSocket on loopback: the server's stream, its
// reader (which hands pongs to the pacer), and the client's socket.
type wsPaced struct {
	p        *wsPace
	conn     *wire.Conn
	client   net.Conn
	progress atomic.Int32
	resumed  atomic.Int32
}

func newWSPaced(t *testing.T, age time.Duration) *wsPaced {
	t.Helper()
	conn, client := tcpPair(t)
	w := &wsPaced{conn: conn, client: client}
	w.p = newWSPace(age, conn, func() { w.progress.Add(1) }, func() { w.resumed.Add(1) })
	r := wire.NewReader(bufio.NewReaderSize(conn, 256), conn, 4096, w.p.answer)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := r.Next(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { client.Close(); conn.Close(); <-done })
	return w
}

// batch writes one batch of n bytes (a text frame) the way the transport
// does, with the pacer's ping if it asks for one, unless the pacer holds;
// it returns the hold.
func (w *wsPaced) batch(t *testing.T, n int) time.Duration {
	t.Helper()
	if d := w.p.Hold(); d > 0 {
		return d
	}
	bp := wire.Buf()
	b := wire.AppendHeader((*bp)[:0], wire.OpText, n)
	b = append(b, strings.Repeat("x", n)...)
	*bp = w.p.appendAsk(b, w.conn.Written())
	if done, err := w.conn.TrySendBuf(bp); err != nil || !done {
		t.Fatalf("write: done %v, %v", done, err)
	}
	return 0
}

// peer reads the client's frames and answers each ping with a pong that
// echoes it (masked, as a client must) — or, when answer is set, with
// answer's payload followed by a ping of its own, whose pong from the
// server's reader shows that the reader has taken the answer; it counts
// the pings it got and the pongs.
func peer(t *testing.T, c net.Conn, pings, pongs *atomic.Int32, answer func([]byte) []byte) {
	peerUntil(t, c, pings, pongs, answer, nil)
}

// peerUntil is peer that stops reading once stop is closed.
func peerUntil(t *testing.T, c net.Conn, pings, pongs *atomic.Int32, answer func([]byte) []byte, stop <-chan struct{}) {
	br := bufio.NewReader(c)
	for {
		select {
		case <-stop:
			return
		default:
		}
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(br, l[:]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(br, l[:]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		switch h[0] & 0xf {
		case wire.OpPong:
			pongs.Add(1)
			continue
		case wire.OpPing:
		default:
			continue
		}
		pings.Add(1)
		sync := answer != nil
		if sync {
			payload = answer(payload)
		}
		pong := append([]byte{0x80 | wire.OpPong, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...) // a zero key masks nothing
		if sync {
			pong = append(pong, 0x80|wire.OpPing, 0x80, 0, 0, 0, 0)
		}
		if _, err := c.Write(pong); err != nil {
			return
		}
	}
}

// TestWSPaceKeepsUpFree: a peer that reads everything at once is asked
// at most once per ask — not once per batch — and less and less often as
// it keeps answering at once; (unless a busy machine delays its answer
// past age, which is logged) it is never held. Once it stops reading, it
// is held within maxBackoff × age.
func TestWSPaceKeepsUpFree(t *testing.T) {
	const age = 400 * time.Millisecond
	w := newWSPaced(t, age)
	var pings atomic.Int32
	stop := make(chan struct{})
	go peerUntil(t, w.client, &pings, new(atomic.Int32), nil, stop)
	start := time.Now()
	batches := 0
	for time.Since(start) < 2*time.Second {
		if d := w.batch(t, 2000); d > 0 {
			// A busy machine can delay the answer past age; say how long.
			t.Logf("held %v after %v with the ping out for more than %v", d, time.Since(start), age*askShare/4)
		}
		batches++
		time.Sleep(10 * time.Millisecond)
	}
	got := pings.Load()
	t.Logf("%d batches in %v, %d pings", batches, time.Since(start).Round(time.Millisecond), got)
	if got == 0 {
		t.Error("never asked: a peer is never confirmed")
	}
	// Each batch from ask on carries a ping until the answer comes: about
	// one per ask when the answer comes at once; a slow answer adds a few.
	if got > int32(batches/3) {
		t.Errorf("%d pings for %d batches; a peer that keeps up is asked about once per %v", got, batches, age*askShare/4)
	}
	if w.progress.Load() == 0 {
		t.Error("answers were not reported as progress")
	}
	t.Logf("asked every %v at the end", w.p.every)
	if w.p.every <= w.p.ask {
		t.Errorf("asked every %v after %d answers at once; want less often than every %v", w.p.every, got, w.p.ask)
	}
	close(stop)
	stopped := time.Now()
	for w.batch(t, 100) == 0 { // small: the socket holds seconds of them
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("a peer that stopped reading was not held within %v", time.Since(stopped))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(stopped); d > maxBackoff*age+2*age {
		t.Errorf("held %v after the peer stopped reading; want within %v (logged, not a timing test: the bound is the backoff's)", d, maxBackoff*age+2*age)
	}
}

// TestWSPaceHoldsUntilConfirmed: a peer that reads nothing is written to
// until its oldest unconfirmed batch is age old, then held, with a ping
// out; Hold asks nothing more and writes nothing while it holds. Once the
// peer reads and answers, the pacer resumes the writer and writes again.
func TestWSPaceHoldsUntilConfirmed(t *testing.T) {
	const age = 300 * time.Millisecond
	w := newWSPaced(t, age)
	start := time.Now()
	var held time.Duration
	for held == 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("a peer that reads nothing was never held")
		}
		held = w.batch(t, 500)
		time.Sleep(10 * time.Millisecond)
	}
	if since := time.Since(start); since < age {
		t.Fatalf("held after %v, before the first batch was %v old", since, age)
	}
	if w.p.asked.Load() <= w.p.confirmed.Load() {
		t.Fatal("held with no question out: nothing can end the hold")
	}
	at := w.conn.Written()
	for range 3 {
		if d := w.p.Hold(); d <= 0 {
			t.Fatalf("a peer that read nothing was let go: %v", d)
		}
	}
	if w.conn.Written() != at {
		t.Errorf("asking again during the hold wrote %d bytes", w.conn.Written()-at)
	}
	if w.resumed.Load() != 0 || w.progress.Load() != 0 {
		t.Fatalf("resumed %d, progress %d before the peer read anything", w.resumed.Load(), w.progress.Load())
	}
	var pings atomic.Int32
	go peer(t, w.client, &pings, new(atomic.Int32), nil)
	poll.Until(t, 10*time.Second, "the answer resumes the writer", func() bool { return w.resumed.Load() > 0 })
	if w.progress.Load() == 0 {
		t.Error("the answer was not reported as progress")
	}
	// Each batch written past ask carried a ping; once the peer has
	// answered the last, the writer goes on.
	poll.Until(t, 10*time.Second, "the writer writes again", func() bool { return w.batch(t, 500) == 0 })
}

// TestWSPaceWrongAnswers: pongs that do not echo the outstanding ping —
// empty (the liveness pinger's), another offset, or too short — confirm
// nothing, and the peer stays held.
func TestWSPaceWrongAnswers(t *testing.T) {
	for name, answer := range map[string]func([]byte) []byte{
		"empty":   func([]byte) []byte { return nil },
		"further": func(p []byte) []byte { return binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(p)+1<<20) },
		"short":   func(p []byte) []byte { return p[:7] },
	} {
		t.Run(name, func(t *testing.T) {
			const age = 200 * time.Millisecond
			w := newWSPaced(t, age)
			var pings, pongs atomic.Int32
			go peer(t, w.client, &pings, &pongs, answer)
			start := time.Now()
			for w.batch(t, 500) == 0 {
				if time.Since(start) > 10*time.Second {
					t.Fatal("a peer whose answers are wrong was never held")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// The peer's own ping after its answer comes back once the
			// server's reader has taken the answer.
			poll.Until(t, 10*time.Second, "the server answered the ping after the wrong pong", func() bool { return pongs.Load() > 0 })
			if d := w.p.Hold(); d <= 0 || w.resumed.Load() != 0 || w.p.confirmed.Load() != 0 {
				t.Errorf("hold %v, resumed %d, confirmed %d after a wrong answer", d, w.resumed.Load(), w.p.confirmed.Load())
			}
		})
	}
}

// TestWSPaceMarks: the ring of batch times drops what is confirmed, keeps
// the time of the oldest unconfirmed byte, and when full counts newer
// batches as written at its newest time (older than they are, never
// younger).
func TestWSPaceMarks(t *testing.T) {
	p := &wsPace{}
	if got := p.oldest(0, 0); got != 0 {
		t.Fatalf("nothing written: oldest %d", got)
	}
	for i := range maxMarks + 4 {
		p.note(uint64(i*100), int64(1000+i))
	}
	if p.n != maxMarks {
		t.Fatalf("%d marks, want the ring's %d", p.n, maxMarks)
	}
	written := uint64((maxMarks + 4) * 100)
	if got := p.oldest(0, written); got != 1000 {
		t.Errorf("nothing confirmed: oldest %d, want 1000", got)
	}
	if got := p.oldest(250, written); got != 1002 {
		t.Errorf("confirmed to 250: oldest %d, want 1002 (the mark of byte 250)", got)
	}
	if got := p.oldest(uint64(maxMarks-1)*100+50, written); got != 1000+maxMarks-1 {
		t.Errorf("confirmed into the last mark: oldest %d, want %d", got, 1000+maxMarks-1)
	}
	if got := p.oldest(written, written); got != 0 || p.n != 0 {
		t.Errorf("all confirmed: oldest %d, %d marks", got, p.n)
	}
	p.note(written, 5000)
	p.note(written, 6000) // nothing went out between: the newer time stands
	if got := p.oldest(0, written+10); got != 6000 {
		t.Errorf("oldest %d, want 6000", got)
	}
}

// TestWSPaceOff: age 0 is no pacer, and a nil pacer never holds, asks or
// answers.
func TestWSPaceOff(t *testing.T) {
	conn, _ := tcpPair(t)
	p := newWSPace(0, conn, nil, nil)
	if p != nil {
		t.Fatal("age 0 made a pacer")
	}
	if p.Hold() != 0 || len(p.appendAsk([]byte("x"), 0)) != 1 {
		t.Error("a nil pacer held or asked")
	}
	p.answer(make([]byte, 8))
}

// TestWSPaceBehind: a peer that reads a fifth of what it is offered is
// marked behind, its pace is measured from its answers, and it is held so
// that what it reads was written about half of age before at most — not
// the seconds of batches its socket and receive buffer would hold.
func TestWSPaceBehind(t *testing.T) {
	const age = 400 * time.Millisecond
	const rate = 20 << 10 // the peer's pace: bytes a second
	w := newWSPaced(t, age)
	var worst atomic.Int64 // the oldest batch the peer read, in ns since written
	var read atomic.Int32
	// Until the peer's pace is known (its first answers), batches go at the
	// full rate: judged are those written from settled on.
	settled := time.Now().Add(2 * time.Second).UnixNano()
	go func() {
		br := bufio.NewReaderSize(w.client, 512)
		for {
			var h [4]byte
			if _, err := io.ReadFull(br, h[:2]); err != nil {
				return
			}
			n := int(h[1] & 0x7f)
			if n == 126 {
				if _, err := io.ReadFull(br, h[2:4]); err != nil {
					return
				}
				n = int(binary.BigEndian.Uint16(h[2:4]))
			}
			payload := make([]byte, n)
			for got := 0; got < n; {
				m, err := br.Read(payload[got:min(got+256, n)])
				if err != nil {
					return
				}
				got += m
				time.Sleep(time.Duration(m) * time.Second / rate)
			}
			switch h[0] & 0xf {
			case wire.OpPing:
				pong := append([]byte{0x80 | wire.OpPong, 0x80 | byte(n), 0, 0, 0, 0}, payload...)
				if _, err := w.client.Write(pong); err != nil {
					return
				}
			case wire.OpText:
				at := int64(binary.BigEndian.Uint64(payload))
				read.Add(1)
				if d := time.Now().UnixNano() - at; at >= settled && d > worst.Load() {
					worst.Store(d)
				}
			}
		}
	}()
	start := time.Now()
	holds := 0
	for time.Since(start) < 5*time.Second {
		if w.p.Hold() > 0 {
			holds++
		} else {
			bp := wire.Buf()
			b := wire.AppendHeader((*bp)[:0], wire.OpText, 2000)
			b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
			b = append(b, strings.Repeat("x", 2000-8)...)
			*bp = w.p.appendAsk(b, w.conn.Written())
			if done, err := w.conn.TrySendBuf(bp); err != nil {
				t.Fatal(err)
			} else if !done {
				if err := w.conn.Finish(); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // 100 KB/s offered
	}
	t.Logf("%d batches read, %d holds, pace %.0f B/s (reads %d), oldest read %v", read.Load(), holds, w.p.rate, rate, time.Duration(worst.Load()))
	if w.p.every != 0 {
		t.Errorf("asked every %v: a peer five times too slow was not marked behind", w.p.every)
	}
	if w.p.rate < rate/2 || w.p.rate > rate*2 {
		t.Errorf("pace %.0f B/s; the peer reads %d", w.p.rate, rate)
	}
	if holds == 0 {
		t.Error("never held")
	}
	// The socket and a 64 KiB receive buffer hold about 4 s of this
	// peer's reading; paced, it reads what is at most age old plus a
	// batch or two (a busy machine adds to it: logged above).
	if d := time.Duration(worst.Load()); d > age+time.Second {
		t.Errorf("the peer read a batch %v after it was written; want about %v", d, age)
	}
}
