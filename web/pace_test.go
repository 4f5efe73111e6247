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

// TestPaceHoldsAPeerThatDoesNotReadAndReleasesItWhenItDoes: on a real
// socket, a peer that reads nothing is held once about limit bytes wait
// for it, and probed; once it reads everything, the probes' acknowledgements
// show its window open again and the writer goes on, with progress
// reported.
func TestPaceHoldsAPeerThatDoesNotReadAndReleasesItWhenItDoes(t *testing.T) {
	conn, client := tcpPair(t)
	var progressed atomic.Int32
	p := &pace{limit: 4096, conn: conn, probe: sseProbe, progress: func() { progressed.Add(1) }}
	frame := []byte(strings.Repeat("x", 1000) + "\n\n")
	var wrote int
	for p.Hold() == 0 {
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
	t.Logf("held after %d bytes (limit 4096)", wrote)
	if d := p.Hold(); d <= 0 {
		t.Fatal("let go of a peer that still reads nothing")
	}
	if got := conn.Written() - uint64(wrote); got != uint64(len(sseProbe)) {
		t.Errorf("holding wrote %d bytes, want one probe of %d", got, len(sseProbe))
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

// TestPaceOffOrNotTCP: without a limit, or on a connection the kernel
// cannot tell about, Hold never holds.
func TestPaceOffOrNotTCP(t *testing.T) {
	conn, _ := tcpPair(t)
	if p := newPace(0, conn, wsProbe, nil); p != nil || p.Hold() != 0 {
		t.Fatalf("pacing off made a pacer %+v that holds", p)
	}
	off := &pace{conn: conn, probe: wsProbe}
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
	pipe := &pace{limit: 1, conn: wire.New(a, 0), probe: wsProbe}
	go func() { _, _ = b.Read(make([]byte, 64)) }()
	if err := pipe.conn.Send([]byte("hello"), false); err != nil {
		t.Fatal(err)
	}
	if d := pipe.Hold(); d != 0 {
		t.Fatalf("a pipe was held for %v", d)
	}
}
