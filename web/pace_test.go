package web

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/internal/sockopt"
	"quotehub/web/internal/wire"
)

// tcpPair returns the server's stream and the client's socket of a
// loopback connection whose client has a 64 KiB receive buffer.
func tcpPair(t *testing.T) (*wire.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: sockopt.RcvBuf(64 << 10)}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return wire.New(server, 16<<10), client
}

// fill writes frames of n bytes to conn until p holds, and returns what
// it wrote; a peer that reads nothing must be held within a MiB.
func fill(t *testing.T, p *pace, conn *wire.Conn, n int) (wrote int, held time.Duration) {
	t.Helper()
	frame := []byte(strings.Repeat("x", n-2) + "\n\n")
	for {
		if held = p.Hold(); held > 0 {
			return wrote, held
		}
		if wrote > 1<<20 {
			t.Fatalf("wrote %d bytes to a peer that reads nothing without being held", wrote)
		}
		bp := wire.Buf()
		*bp = append(*bp, frame...)
		done, err := conn.TrySendBuf(bp)
		if err != nil || !done {
			t.Fatalf("write %d: done %v, %v", wrote, done, err)
		}
		wrote += len(frame)
	}
}

// TestPaceHoldsAPeerThatDoesNotReadAndReleasesItWhenItDoes: on a real
// socket, a peer that reads nothing is held once a few KB wait for it;
// while the hold runs Hold answers without writing anything; once the
// peer reads everything, the writer goes on, with progress reported.
func TestPaceHoldsAPeerThatDoesNotReadAndReleasesItWhenItDoes(t *testing.T) {
	conn, client := tcpPair(t)
	var progressed atomic.Int32
	p := newPace(time.Second, conn, func() { progressed.Add(1) })
	wrote, d := fill(t, p, conn, 1000)
	t.Logf("held for %v after %d bytes", d, wrote)
	if wrote > 8*firstLimit { // the window counts memory: it shrinks by less than what arrives
		t.Errorf("held only after %d bytes; the first limit is %d", wrote, firstLimit)
	}
	at := conn.Written()
	if d2 := p.Hold(); d2 <= 0 || d2 > d {
		t.Fatalf("asked again during a hold of %v: %v", d, d2)
	}
	if conn.Written() != at {
		t.Errorf("asking again during the hold wrote %d bytes", conn.Written()-at)
	}

	// The peer reads everything there is.
	buf := make([]byte, 64<<10)
	var read int
	for read < wrote {
		if err := client.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("reading what was written: %v after %d of %d bytes", err, read, wrote)
		}
		read += n
	}
	poll.Until(t, 5*time.Second, "the writer let go once the peer read everything", func() bool {
		_ = client.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, _ = client.Read(buf) // the probes
		return p.Hold() == 0
	})
	if progressed.Load() == 0 {
		t.Error("the peer read while held, and no progress was reported")
	}
}

// TestPaceByTime: the limit is the peer's pace times the age. A peer
// measured to read 1 MB/s is not held with 40 KB unread (0.04 s of
// reading); one measured to read 4 KB/s is, for the time its backlog
// takes to come down to the limit at that pace (no longer than the gap),
// and is let go at that time even though its window shows no read.
func TestPaceByTime(t *testing.T) {
	conn, _ := tcpPair(t)
	fast := newPace(time.Second, conn, nil)
	fast.rate, fast.rated = 1e6, true // the limit follows at the first look
	for i := range 40 {
		bp := wire.Buf()
		*bp = append(*bp, strings.Repeat("x", 1000)...)
		if _, err := conn.TrySendBuf(bp); err != nil {
			t.Fatal(err)
		}
		if d := fast.Hold(); d != 0 {
			t.Fatalf("a peer reading 1 MB/s held for %v with %d KB unread", d, i+1)
		}
	}

	conn2, _ := tcpPair(t)
	slow := newPace(time.Second, conn2, nil)
	slow.rate, slow.rated, slow.gap = 4000, true, time.Second
	wrote, d := fill(t, slow, conn2, 1000)
	if wrote < 4000 || wrote > 16000 { // the window counts memory: it shrinks by less than what arrives
		t.Errorf("a peer reading 4 KB/s held after %d bytes, want about the limit of 4000", wrote)
	}
	u := conn2.Unread()
	want := min(time.Duration(float64(u.Bytes-slow.limit)/4000*float64(time.Second)), slow.gap)
	if d < want-10*time.Millisecond || d > want+10*time.Millisecond {
		t.Errorf("held for %v with %d unread at 4 KB/s, want the predicted %v", d, u.Bytes, want)
	}
	slow.until = time.Now().UnixNano() - 1 // the hold has run its time
	if got := slow.Hold(); got != 0 {
		t.Errorf("at the predicted time the writer was held again for %v; want one batch", got)
	}
}

// TestPaceOffOrNotTCP: without a limit, or on a connection the kernel
// cannot tell about, Hold never holds.
func TestPaceOffOrNotTCP(t *testing.T) {
	conn, _ := tcpPair(t)
	if p := newPace(0, conn, nil); p != nil || p.Hold() != 0 {
		t.Fatalf("pacing off made a pacer %+v that holds", p)
	}
	off := &pace{conn: conn}
	for range 3 {
		bp := wire.Buf()
		*bp = append(*bp, strings.Repeat("x", 8192)...)
		if _, err := conn.TrySendBuf(bp); err != nil {
			t.Fatal(err)
		}
		if d := off.Hold(); d != 0 {
			t.Fatalf("a pace without a limit held for %v", d)
		}
	}
	a, b := net.Pipe() // no file descriptor: nothing to ask the kernel
	defer a.Close()
	defer b.Close()
	pipe := &pace{age: time.Second, limit: 1, conn: wire.New(a, 0)}
	go func() { _, _ = b.Read(make([]byte, 64)) }()
	if err := pipe.conn.Send([]byte("hello"), false); err != nil {
		t.Fatal(err)
	}
	if d := pipe.Hold(); d != 0 {
		t.Fatalf("a pipe was held for %v", d)
	}
}
