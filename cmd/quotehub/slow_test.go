package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"quotehub/internal/sockopt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pacedConn reads from a socket at most rate bytes a second, in small
// slices, so that TCP flow control backs up to the server as it would
// for a client on a slow link or a busy tab.
type pacedConn struct {
	net.Conn
	rate   float64
	budget float64
	last   time.Time
}

func (p *pacedConn) Read(b []byte) (int, error) {
	for {
		now := time.Now()
		p.budget = min(p.budget+p.rate*now.Sub(p.last).Seconds(), p.rate/20)
		p.last = now
		if p.budget >= 512 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	n, err := p.Conn.Read(b[:min(len(b), int(p.budget))])
	p.budget -= float64(n)
	return n, err
}

// dialSlow connects to the node with a small receive buffer and returns a
// reader paced to rate bytes a second.
func dialSlow(t *testing.T, addr string, rcvbuf int, rate float64) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Control: sockopt.RcvBuf(rcvbuf)}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReaderSize(&pacedConn{Conn: conn, rate: rate, last: time.Now()}, 64<<10)
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
	syms := make([]string, 200)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYN-%06d", i+1)
	}
	list := strings.Join(syms, ",")
	// 200 symbols of about 230 bytes every 100 ms: about 460 KB/s offered.
	const offered = 200 * 230 * 10
	const rate = offered * 4 / 10
	const duration = 60 * time.Second
	for _, transport := range []string{"ws", "sse"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			conn, br := dialSlow(t, n.addr, 64<<10, rate)
			if transport == "ws" {
				fmt.Fprintf(conn, "GET /v1/ws?symbols=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", list)
			} else {
				fmt.Fprintf(conn, "GET /v1/sse?symbols=%s HTTP/1.1\r\nHost: x\r\n\r\n", list)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"ws": 101, "sse": 200}[transport]; resp.StatusCode != want {
				t.Fatalf("status %d, want %d", resp.StatusCode, want)
			}
			a := newAges(5 * time.Second)
			var ended error
			deadline := time.Now().Add(duration)
			read := readSSE
			if transport == "ws" {
				read = readWS
			}
			for time.Now().Before(deadline) {
				if ended = read(conn, br, a); ended != nil {
					break
				}
			}
			a.close(time.Now())
			for _, l := range a.log {
				t.Log(l)
			}
			t.Logf("%d quotes in all, p99 age %.2fs", len(a.all), p99(a.all))
			if ended != nil {
				t.Fatalf("a client reading at 40 %% of the offered rate was disconnected after %v: %v", time.Since(a.start).Round(time.Second), ended)
			}
			if len(a.all) < 1000 {
				t.Fatalf("only %d quotes in a minute", len(a.all))
			}
			if got := p99(a.all); got > 2 {
				t.Errorf("p99 age %.2fs, want at most 2 s", got)
			}
		})
	}
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
