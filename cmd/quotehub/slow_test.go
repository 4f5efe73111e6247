package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"quotehub/internal/poll"
	"quotehub/internal/sockopt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pacedConn reads from a socket at most rate bytes a second, in slices of
// at least 512 bytes (a bucket of rate/20, or 512 bytes for slower rates),
// so that TCP flow control backs up to the server as it would for a
// client on a slow link or a busy tab. A read deadline set on it holds
// while it waits for its bucket, too.
type pacedConn struct {
	net.Conn
	rate     float64
	budget   float64
	last     time.Time
	deadline time.Time
}

func (p *pacedConn) SetReadDeadline(d time.Time) error {
	p.deadline = d
	return p.Conn.SetReadDeadline(d)
}

func (p *pacedConn) Read(b []byte) (int, error) {
	bucket := max(p.rate/20, 512)
	for {
		now := time.Now()
		p.budget = min(p.budget+p.rate*now.Sub(p.last).Seconds(), bucket)
		p.last = now
		if p.budget >= 512 {
			break
		}
		if !p.deadline.IsZero() && now.After(p.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		time.Sleep(5 * time.Millisecond)
	}
	n, err := p.Conn.Read(b[:min(len(b), int(p.budget))])
	p.budget -= float64(n)
	return n, err
}

// dialSlow connects to the node with a small receive buffer and returns a
// reader paced to rate bytes a second (and the paced connection).
func dialSlow(t *testing.T, addr string, rcvbuf int, rate float64) (*pacedConn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Control: sockopt.RcvBuf(rcvbuf)}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pc := &pacedConn{Conn: conn, rate: rate, last: time.Now()}
	return pc, bufio.NewReaderSize(pc, 64<<10)
}

// ages collects the age of every quote a client receives (receive time
// minus fetched_at), in windows.
type ages struct {
	start, window time.Time
	every         time.Duration
	cur, all      []float64
	log           []string
}

func newAges(every time.Duration) *ages {
	now := time.Now()
	return &ages{start: now, window: now, every: every}
}

// add records the quotes in payload.
func (a *ages) add(payload []byte) {
	now := time.Now()
	if now.Sub(a.window) >= a.every {
		a.close(now)
	}
	for {
		i := bytes.Index(payload, []byte(`"fetched_at":`))
		if i < 0 {
			return
		}
		payload = payload[i+len(`"fetched_at":`):]
		j := bytes.IndexAny(payload, ",}")
		if j < 0 {
			return
		}
		ms, err := strconv.ParseInt(string(payload[:j]), 10, 64)
		if err == nil {
			age := float64(now.UnixMilli()-ms) / 1000
			a.cur = append(a.cur, age)
			a.all = append(a.all, age)
		}
	}
}

func p99(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)*99/100]
}

func (a *ages) close(now time.Time) {
	a.log = append(a.log, fmt.Sprintf("%4.0fs: %5d quotes, p99 age %.2fs", now.Sub(a.start).Seconds(), len(a.cur), p99(a.cur)))
	a.cur, a.window = a.cur[:0], now
}

// TestSlowReaderGetsTheLatest: a client that reads at 40 % of what it is
// offered, with a small receive buffer, receives each symbol's newest
// value: the age of what it gets stays bounded by its own read pace
// (p99 ≤ 2 s for a minute), and it is not disconnected. Without the
// unsent limit the kernel's send buffer queued seconds of stale quotes in
// front of it, and the age grew by about 3 s every 5 s.
func TestSlowReaderGetsTheLatest(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute long; run without -short")
	}
	n := startNode(t, map[string]string{
		"QUOTEHUB_SIM_SYMBOLS": "1000", "QUOTEHUB_SIM_BATCH": "1000", "QUOTEHUB_REFRESH_INTERVAL": "100ms",
	})
	list := symbolList(200)
	// 200 symbols of about 230 bytes every 100 ms: about 460 KB/s offered.
	const offered = 200 * 230 * 10
	const rate = offered * 4 / 10
	const duration = 60 * time.Second
	readSlowly(t, n.addr, list, rate, duration, 1000)
}

// readFor reads a stream for d, recording the age of its quotes per 5 s
// window, and logs them under name. ended is why the stream ended early,
// if it did. It may run beside other readers of the test.
func readFor(t *testing.T, name string, conn net.Conn, br *bufio.Reader, transport string, d time.Duration) (a *ages, ended error) {
	t.Helper()
	read := readSSE
	if transport == "ws" {
		read = readWS
	}
	a = newAges(5 * time.Second)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if ended = read(conn, br, a); ended != nil {
			break
		}
	}
	a.close(time.Now())
	t.Logf("%s:\n  %s\n  %d quotes in all, p99 age %.2fs", name, strings.Join(a.log, "\n  "), len(a.all), p99(a.all))
	return a, ended
}

// readWS reads one WebSocket frame, records the quotes of a text frame,
// answers a ping, and returns an error when the connection ends.
func readWS(conn net.Conn, br *bufio.Reader, a *ages) error {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return err
	}
	op, n := h[0]&0xf, int(h[1]&0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint64(h[:8]))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return err
	}
	switch op {
	case 1:
		a.add(payload)
	case 8:
		return fmt.Errorf("close frame %x", payload)
	case 9: // ping: answer with a masked pong carrying the payload
		pong := append([]byte{0x8a, 0x80 | byte(n), 0, 0, 0, 0}, payload...)
		if _, err := conn.Write(pong); err != nil {
			return err
		}
	}
	return nil
}

// readSSE reads one line of an SSE stream and records the quote of a
// data line.
func readSSE(_ net.Conn, br *bufio.Reader, a *ages) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if bytes.HasPrefix(line, []byte("data: ")) {
		a.add(line)
	}
	return nil
}

// openSlow opens a WebSocket or SSE stream of list on a socket with a
// receive buffer of rcvbuf that reads rate bytes a second, and checks the
// response's status. Every read fails after deadline, so that no read of
// the test waits for ever.
func openSlow(t *testing.T, addr, transport, list string, rcvbuf int, rate float64, deadline time.Time) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br := dialSlow(t, addr, rcvbuf, rate)
	if err := conn.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if transport == "ws" {
		fmt.Fprintf(conn, "GET /v1/ws?symbols=%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", list)
	} else {
		fmt.Fprintf(conn, "GET /v1/sse?symbols=%s HTTP/1.1\r\nHost: localhost\r\n\r\n", list)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"ws": 101, "sse": 200}[transport]; resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
	return conn, br
}

// readSlowly reads list over a WebSocket and an SSE stream at once, each
// at rate bytes a second with a 64 KiB receive buffer, for d, and fails a
// stream that ends early, gets fewer than least quotes, or whose p99 age
// is more than 2 s over a control's: a WebSocket of the same symbols read
// as fast as it comes, beside them. The control's age is what the machine
// itself adds (a busy machine delays every reader); the 2 s are what a
// slow reader may lag behind it, where buffers in front of it would add
// tens of seconds.
func readSlowly(t *testing.T, addr, list string, rate float64, d time.Duration, least int) {
	t.Helper()
	deadline := time.Now().Add(d + 10*time.Second)
	type stream struct {
		name, transport string
		rate            float64
		rcvbuf          int
		conn            net.Conn
		br              *bufio.Reader
		a               *ages
		ended           error
	}
	streams := []*stream{
		{name: "ws", transport: "ws", rate: rate, rcvbuf: 64 << 10},
		{name: "sse", transport: "sse", rate: rate, rcvbuf: 64 << 10},
		{name: "control", transport: "ws", rate: 1e9, rcvbuf: 1 << 20},
	}
	for _, s := range streams {
		s.conn, s.br = openSlow(t, addr, s.transport, list, s.rcvbuf, s.rate, deadline)
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Go(func() { s.a, s.ended = readFor(t, s.name, s.conn, s.br, s.transport, d) })
	}
	wg.Wait()
	control := p99(streams[2].a.all)
	for _, s := range streams {
		switch {
		case s.ended != nil:
			t.Errorf("%s: a client reading %.1f KB/s was disconnected after %v: %v", s.name, s.rate/1e3, time.Since(s.a.start).Round(time.Second), s.ended)
		case len(s.a.all) < least:
			t.Errorf("%s: only %d quotes in %v", s.name, len(s.a.all), d)
		case s.name != "control" && p99(s.a.all) > control+2:
			t.Errorf("%s: p99 age %.2fs, want at most 2 s over the control's %.2fs", s.name, p99(s.a.all), control)
		}
	}
}

// symbolList is the sim's first n symbols, comma-separated.
func symbolList(n int) string {
	syms := make([]string, n)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYN-%06d", i+1)
	}
	return strings.Join(syms, ",")
}

// TestPacedSlowReaderStaysFresh: with QUOTEHUB_UNREAD_AGE (WebSocket) and
// QUOTEHUB_SSE_UNREAD_AGE at 1 s, a client of
// 10 symbols every 200 ms that reads 4.7 KB/s (40 % of what it is offered)
// with a 64 KiB receive buffer gets quotes whose p99 age stays within 2 s,
// and stays connected. Without pacing its own receive buffer (128 KiB as
// the kernel counts it) fills with quotes it reads 20 s and more later.
func TestPacedSlowReaderStaysFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s long; run without -short")
	}
	n := startNode(t, map[string]string{
		"QUOTEHUB_SIM_SYMBOLS": "1000", "QUOTEHUB_SIM_BATCH": "1000", "QUOTEHUB_REFRESH_INTERVAL": "200ms",
		"QUOTEHUB_UNREAD_AGE": "1s", "QUOTEHUB_SSE_UNREAD_AGE": "1s",
	})
	list := symbolList(10)
	const rate = 4700
	const duration = 20 * time.Second
	readSlowly(t, n.addr, list, rate, duration, 100)
	t.Cleanup(func() {
		if got := n.metric("quotehub_slow_consumer_disconnects_total"); got != 0 {
			t.Errorf("%v slow-consumer disconnects, want none", got)
		}
		if got := n.metric("quotehub_writes_held_total"); got == 0 {
			t.Error("no write was held: pacing never engaged")
		}
	})
}

// TestPacedNeverReaderClosed: with both pacers on, a client that
// reads nothing is still closed as a slow consumer (4000 on a WebSocket,
// the connection closed on SSE) and counted, once its receive buffer is
// full and nothing more moves for the slow-consumer timeout.
func TestPacedNeverReaderClosed(t *testing.T) {
	n := startNode(t, map[string]string{
		"QUOTEHUB_SIM_SYMBOLS": "1000", "QUOTEHUB_SIM_BATCH": "1000", "QUOTEHUB_REFRESH_INTERVAL": "100ms",
		"QUOTEHUB_UNREAD_AGE": "1s", "QUOTEHUB_SSE_UNREAD_AGE": "1s", "QUOTEHUB_SLOW_CONSUMER_TIMEOUT": "1s",
	})
	list := symbolList(100)
	deadline := time.Now().Add(60 * time.Second)
	ws, wsr := openSlow(t, n.addr, "ws", list, 64<<10, 1e9, deadline)
	_, _ = openSlow(t, n.addr, "sse", list, 64<<10, 1e9, deadline)
	// Neither reads from here on.
	poll.Until(t, 45*time.Second, "both never-reading clients closed as slow consumers", func() bool {
		return n.metric("quotehub_slow_consumer_disconnects_total") == 2
	})
	// The WebSocket's close frame comes after everything it did not read.
	var code int
	for code == 0 {
		var h [8]byte
		if _, err := io.ReadFull(wsr, h[:2]); err != nil {
			t.Fatalf("the stream ended without a close frame: %v", err)
		}
		op, size := h[0]&0xf, int(h[1]&0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(wsr, h[:2]); err != nil {
				t.Fatal(err)
			}
			size = int(binary.BigEndian.Uint16(h[:2]))
		case 127:
			if _, err := io.ReadFull(wsr, h[:8]); err != nil {
				t.Fatal(err)
			}
			size = int(binary.BigEndian.Uint64(h[:8]))
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(wsr, payload); err != nil {
			t.Fatalf("the stream ended without a close frame: %v", err)
		}
		if op == 8 && size >= 2 {
			code = int(binary.BigEndian.Uint16(payload))
		}
	}
	if code != 4000 {
		t.Errorf("closed with %d, want 4000", code)
	}
	_ = ws
}
