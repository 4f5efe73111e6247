package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsTestServer is a loopback TCP server that speaks raw RFC 6455: each test
// gives the handler that runs on the one connection it accepts.
type wsTestServer struct {
	ln   net.Listener
	done chan error
}

// wsPeer is the server side of one accepted connection.
type wsPeer struct {
	t   *testing.T
	nc  net.Conn
	br  *bufio.Reader
	req *http.Request
}

// startWSServer accepts one connection, reads its upgrade request and runs
// handle. The test fails with handle's error.
func startWSServer(t *testing.T, handle func(p *wsPeer) error) *wsTestServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wsTestServer{ln: ln, done: make(chan error, 1)}
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			s.done <- err
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		p := &wsPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
		p.req, err = http.ReadRequest(p.br)
		if err != nil {
			s.done <- fmt.Errorf("reading the request: %w", err)
			return
		}
		s.done <- handle(p)
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("server handler did not end")
		}
	})
	return s
}

func (s *wsTestServer) url() *url.URL {
	return &url.URL{Scheme: "http", Host: s.ln.Addr().String(), Path: "/v1/ws", RawQuery: "symbols=A%2CB"}
}

// dial connects the client under test with limit (0 = wsReadLimit).
func (s *wsTestServer) dial(t *testing.T, limit int) (*wsConn, *http.Response, error) {
	t.Helper()
	if limit == 0 {
		limit = wsReadLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := dialWS(ctx, &net.Dialer{Control: loopbackOnly}, s.url(), limit)
	if err == nil {
		if !c.EndConnect() {
			t.Fatal("EndConnect failed")
		}
		t.Cleanup(c.CloseNow)
	}
	return c, resp, err
}

// accept answers the upgrade request correctly.
func (p *wsPeer) accept() error {
	if err := p.checkRequest(); err != nil {
		return err
	}
	return p.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wsAccept(p.req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
}

func (p *wsPeer) checkRequest() error {
	r := p.req
	switch {
	case r.Method != http.MethodGet || r.URL.RequestURI() != "/v1/ws?symbols=A%2CB":
		return fmt.Errorf("request %s %s", r.Method, r.URL.RequestURI())
	case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !headerHasToken(r.Header, "Connection", "upgrade"):
		return fmt.Errorf("upgrade headers %v", r.Header)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return fmt.Errorf("version %q", r.Header.Get("Sec-WebSocket-Version"))
	case r.Host != p.nc.LocalAddr().String():
		return fmt.Errorf("host %q", r.Host)
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return fmt.Errorf("key %q", r.Header.Get("Sec-WebSocket-Key"))
	}
	return nil
}

func (p *wsPeer) write(s string) error {
	_, err := io.WriteString(p.nc, s)
	return err
}

// frame builds a server frame (masked with a fixed key when masked).
func frame(fin bool, op byte, payload []byte, masked bool) []byte {
	var b []byte
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 65535:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		key := []byte{1, 2, 3, 4}
		b = append(b, key...)
		for i, x := range payload {
			b = append(b, x^key[i&3])
		}
		return b
	}
	return append(b, payload...)
}

func (p *wsPeer) send(frames ...[]byte) error {
	_, err := p.nc.Write(bytes.Join(frames, nil))
	return err
}

// readFrame reads one client frame; every client frame must be masked and
// final. It returns the unmasked payload.
func (p *wsPeer) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(p.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 {
		return 0, nil, fmt.Errorf("client frame header %#x", h[0])
	}
	if h[1]&0x80 == 0 {
		return 0, nil, errors.New("unmasked client frame")
	}
	n := int(h[1] & 0x7F)
	if n > 125 {
		return 0, nil, fmt.Errorf("client control frame of length code %d", n)
	}
	var key [4]byte
	if _, err = io.ReadFull(p.br, key[:]); err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(p.br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= key[i&3]
	}
	return h[0] & 0x0F, payload, nil
}

// expectClose reads the client's close frame and checks its code.
func (p *wsPeer) expectClose(code int) error {
	op, pl, err := p.readFrame()
	if err != nil {
		return fmt.Errorf("reading the client's close: %w", err)
	}
	if op != opClose || len(pl) < 2 || int(binary.BigEndian.Uint16(pl)) != code {
		return fmt.Errorf("client sent op %#x payload %q, want close %d", op, pl, code)
	}
	return nil
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func TestWSConnHandshakeAndText(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		return p.send(frame(true, opText, []byte(`{"type":"welcome"}`), false))
	})
	c, resp, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d", resp.StatusCode)
	}
	msg, text, err := c.ReadMessage()
	if err != nil || !text || string(msg) != `{"type":"welcome"}` {
		t.Fatalf("got %q text %v err %v", msg, text, err)
	}
}

func TestWSConnHandshakeStatus(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		return p.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := dialWS(ctx, &net.Dialer{Control: loopbackOnly}, s.url(), wsReadLimit)
	if err == nil {
		t.Fatal("503 accepted")
	}
	if kind := connectErrKind(err, resp, ctx, ctx); kind != "handshake_503" {
		t.Errorf("kind %q (err %v)", kind, err)
	}
}

func TestWSConnBadHandshake(t *testing.T) {
	for name, answer := range map[string]func(key string) string{
		"bad accept": func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept("x") + "\r\n\r\n"
		},
		"no accept": func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		},
		"no upgrade": func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n"
		},
		"no connection upgrade": func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n"
		},
		"unrequested extension": func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n"
		},
		"not http": func(string) string { return "garbage\r\n\r\n" },
	} {
		t.Run(name, func(t *testing.T) {
			s := startWSServer(t, func(p *wsPeer) error {
				return p.write(answer(p.req.Header.Get("Sec-WebSocket-Key")))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := dialWS(ctx, &net.Dialer{Control: loopbackOnly}, s.url(), wsReadLimit)
			if err == nil {
				t.Fatal("accepted")
			}
			if kind := connectErrKind(err, resp, ctx, ctx); kind != "handshake" {
				t.Errorf("kind %q (err %v)", kind, err)
			}
		})
	}
	// Mixed-case headers and a Connection list are fine.
	s := startWSServer(t, func(p *wsPeer) error {
		return p.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept: " +
			wsAccept(p.req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
	})
	if _, _, err := s.dial(t, 0); err != nil {
		t.Errorf("case-insensitive headers refused: %v", err)
	}
}

func TestWSConnConnectErrors(t *testing.T) {
	// Dial failure.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := dialWS(ctx, &net.Dialer{Control: loopbackOnly}, &url.URL{Scheme: "http", Host: addr, Path: "/v1/ws"}, wsReadLimit)
	if kind := connectErrKind(err, resp, ctx, ctx); err == nil || kind != "dial" {
		t.Errorf("dial: kind %q err %v", kind, err)
	}

	// A server that never answers: timeout, or cancellation.
	silent := func(p *wsPeer) error {
		_, _ = io.Copy(io.Discard, p.br) // until the client goes
		return nil
	}
	s := startWSServer(t, silent)
	rampCtx := context.Background()
	dctx, dcancel := context.WithTimeout(rampCtx, 200*time.Millisecond)
	defer dcancel()
	_, resp, err = dialWS(dctx, &net.Dialer{Control: loopbackOnly}, s.url(), wsReadLimit)
	if kind := connectErrKind(err, resp, dctx, rampCtx); err == nil || kind != "connect_timeout" {
		t.Errorf("silent server: kind %q err %v", kind, err)
	}

	s = startWSServer(t, silent)
	rampCtx, rampCancel := context.WithCancel(context.Background())
	dctx, dcancel = context.WithTimeout(rampCtx, 5*time.Second)
	defer dcancel()
	time.AfterFunc(100*time.Millisecond, rampCancel)
	_, resp, err = dialWS(dctx, &net.Dialer{Control: loopbackOnly}, s.url(), wsReadLimit)
	if kind := connectErrKind(err, resp, dctx, rampCtx); err == nil || kind != "connect_cancelled" {
		t.Errorf("cancelled: kind %q err %v", kind, err)
	}
}

func TestWSConnPayloadLengths(t *testing.T) {
	lengths := []int{0, 1, 125, 126, 127, 65535, 65536, 70_000}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		for _, n := range lengths {
			if err := p.send(frame(true, opText, payload(n), false)); err != nil {
				return err
			}
		}
		return nil
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lengths {
		msg, text, err := c.ReadMessage()
		if err != nil || !text || !bytes.Equal(msg, payload(n)) {
			t.Fatalf("length %d: got %d bytes text %v err %v", n, len(msg), text, err)
		}
	}
	if c.br.Size() != wsBufSize {
		t.Errorf("bufio grew")
	}
}

func TestWSConnFragmentedWithPing(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		big := bytes.Repeat([]byte("x"), 5000)
		if err := p.send(
			frame(false, opText, []byte("ab"), false),
			frame(true, opPing, []byte("ping-42"), false),
			frame(false, opCont, []byte("cd"), false),
			frame(true, opPong, []byte("ignored"), false),
			frame(false, opCont, big, false),
			frame(true, opCont, []byte("ef"), false),
			frame(true, opText, []byte("next"), false),
		); err != nil {
			return err
		}
		op, pl, err := p.readFrame()
		if err != nil {
			return err
		}
		if op != opPong || string(pl) != "ping-42" {
			return fmt.Errorf("got op %#x payload %q, want pong ping-42", op, pl)
		}
		return nil
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg, text, err := c.ReadMessage()
	want := "abcd" + strings.Repeat("x", 5000) + "ef"
	if err != nil || !text || string(msg) != want {
		t.Fatalf("got %d bytes text %v err %v", len(msg), text, err)
	}
	msg, _, err = c.ReadMessage()
	if err != nil || string(msg) != "next" {
		t.Fatalf("got %q err %v", msg, err)
	}
}

func TestWSConnServerClose(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		if err := p.send(frame(true, opClose, closePayload(4000, "bye"), false)); err != nil {
			return err
		}
		return p.expectClose(4000)
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	var ce websocket.CloseError
	if websocket.CloseStatus(err) != 4000 || !errors.As(err, &ce) || ce.Reason != "bye" {
		t.Fatalf("err %v", err)
	}
}

// TestWSConnReadLoop runs the runner's read loop over wsConn: a binary
// frame is counted as binary_frame, quotes are recorded, and a close 1001
// while not stopping drops the connection with close_1001.
func TestWSConnReadLoop(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		if err := p.send(
			frame(true, opText, []byte(`{"type":"subscribed","symbols":["A"]}`), false),
			frame(true, opBinary, []byte{1, 2, 3}, false),
			frame(true, opText, []byte(`{"type":"quotes","quotes":[{"symbol":"A","seq":2,"fetched_at":1},{"symbol":"A","seq":1,"fetched_at":1}]}`), false),
			frame(true, opClose, closePayload(1001, "going away"), false),
		); err != nil {
			return err
		}
		return p.expectClose(1001)
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{}
	r.phase.Store(phaseMeasure)
	var st connStats
	r.wsReadLoop(&st, c.ReadMessage)
	if st.errs["binary_frame"] != 1 || st.errs["close_1001"] != 1 || !st.dropped || st.deliveries != 2 || st.seqRegressions != 1 || st.frames != 3 {
		t.Errorf("stats: errs %v dropped %v deliveries %d regressions %d frames %d", st.errs, st.dropped, st.deliveries, st.seqRegressions, st.frames)
	}
}

func TestWSConnProtocolErrors(t *testing.T) {
	for name, bad := range map[string][]byte{
		"masked server frame":      frame(true, opText, []byte("hi"), true),
		"reserved bit":             append([]byte{0x80 | 0x40 | opText}, frame(true, opText, []byte("hi"), false)[1:]...),
		"unknown opcode":           frame(true, 0x3, []byte("hi"), false),
		"control frame over 125":   frame(true, opPing, make([]byte, 126), false),
		"fragmented control frame": frame(false, opPing, []byte("p"), false),
		"continuation first":       frame(true, opCont, []byte("hi"), false),
		"text inside a fragment":   append(frame(false, opText, []byte("a"), false), frame(true, opText, []byte("b"), false)...),
		"close of one byte":        frame(true, opClose, []byte{3}, false),
		"invalid close code":       frame(true, opClose, closePayload(1005, ""), false),
		"length with the top bit":  {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			s := startWSServer(t, func(p *wsPeer) error {
				if err := p.accept(); err != nil {
					return err
				}
				if err := p.send(bad); err != nil {
					return err
				}
				return p.expectClose(1002)
			})
			c, _, err := s.dial(t, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.ReadMessage()
			if !errors.Is(err, errWSProtocol) || websocket.CloseStatus(err) != -1 {
				t.Errorf("err %v", err)
			}
		})
	}
}

func TestWSConnReadLimit(t *testing.T) {
	for name, frames := range map[string][][]byte{
		"one frame": {frame(true, opText, make([]byte, 1001), false)},
		"fragments": {frame(false, opText, make([]byte, 600), false), frame(true, opCont, make([]byte, 401), false)},
	} {
		t.Run(name, func(t *testing.T) {
			s := startWSServer(t, func(p *wsPeer) error {
				if err := p.accept(); err != nil {
					return err
				}
				if err := p.send(frame(true, opText, make([]byte, 1000), false)); err != nil {
					return err
				}
				if err := p.send(frames...); err != nil {
					return err
				}
				return p.expectClose(1009)
			})
			c, _, err := s.dial(t, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if msg, _, err := c.ReadMessage(); err != nil || len(msg) != 1000 {
				t.Fatalf("message at the limit: %d bytes, err %v", len(msg), err)
			}
			if _, _, err := c.ReadMessage(); !errors.Is(err, errWSTooBig) {
				t.Errorf("err %v", err)
			}
		})
	}
}

// TestWSConnGracefulClose: Close sends 1000 while another goroutine reads,
// the server answers with its close, and the reader ends with 1000.
func TestWSConnGracefulClose(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		if err := p.send(frame(true, opText, []byte("one"), false)); err != nil {
			return err
		}
		op, pl, err := p.readFrame()
		if err != nil {
			return err
		}
		if op != opClose || string(pl) != string(closePayload(1000, "load test done")) {
			return fmt.Errorf("got op %#x payload %q", op, pl)
		}
		if err := p.send(frame(true, opText, []byte("late"), false), frame(true, opClose, closePayload(1000, ""), false)); err != nil {
			return err
		}
		if _, err := p.br.ReadByte(); err != io.EOF { // the client closes the socket
			return fmt.Errorf("after the close: %v", err)
		}
		return nil
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		defer c.CloseNow()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	start := time.Now()
	c.Close(websocket.StatusNormalClosure, "load test done")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("close took %v", took)
	}
	if err := <-readErr; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("reader ended with %v", err)
	}
}

// TestWSConnCloseSync: the close path used when no reader runs.
func TestWSConnCloseSync(t *testing.T) {
	s := startWSServer(t, func(p *wsPeer) error {
		if err := p.accept(); err != nil {
			return err
		}
		if err := p.expectClose(1000); err != nil {
			return err
		}
		return p.send(frame(true, opText, []byte("late"), false), frame(true, opClose, closePayload(1000, ""), false))
	})
	c, _, err := s.dial(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.CloseSync(websocket.StatusNormalClosure, "load test done")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("close took %v", took)
	}
}

// loopReader serves the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// quotesFrameBytes is a realistic quotes frame of n quotes.
func quotesFrameBytes(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"quotes","quotes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"symbol":"SYN-%06d","price":17.8,"prev_close":17.96,"change":-0.16,"change_rate":-0.008909,"volume":1019191,"currency":"USD","trade_time":1795309388333,"fetched_at":1795309388333,"seq":%d,"source":"sim","market":"open"}`, i+1, i+1)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestWSConnReadNoAlloc(t *testing.T) {
	fr := frame(true, opText, quotesFrameBytes(10), false)
	c := &wsConn{br: bufio.NewReaderSize(&loopReader{b: fr}, wsBufSize), limit: wsReadLimit}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per message", n)
	}
}

func TestCheckSeq(t *testing.T) {
	for _, nsym := range []int{1, 10, seqSmallMax, seqSmallMax + 1, 100} {
		var st connStats
		q := func(i int, seq int64) {
			st.checkSeq(&quoteRec{Symbol: fmt.Appendf(nil, "S%d", i), Seq: seq, HasSeq: true})
		}
		for round := int64(1); round <= 3; round++ {
			for i := range nsym {
				q(i, round*10)
			}
		}
		for i := range nsym {
			q(i, 30) // repeat
			q(i, 5)  // regression
			q(i, 31) // forward
		}
		for i := nsym - 1; i >= 0; i-- { // reverse order
			q(i, 31)
		}
		st.checkSeq(&quoteRec{Symbol: []byte("S0")}) // no seq
		if st.seqRegressions != uint64(nsym) || st.seqRepeats != uint64(2*nsym) || len(st.lastSeq) != nsym || st.errs["quote_without_seq"] != 1 {
			t.Errorf("%d symbols: regressions %d repeats %d tracked %d errs %v", nsym, st.seqRegressions, st.seqRepeats, len(st.lastSeq), st.errs)
		}
		if allocs := testing.AllocsPerRun(100, func() { q(nsym-1, 40) }); allocs > 1 { // the 1 is fmt.Appendf
			t.Errorf("%d symbols: %v allocations", nsym, allocs)
		}
	}
}

func BenchmarkWSConnRead(b *testing.B) {
	fr := frame(true, opText, quotesFrameBytes(10), false)
	c := &wsConn{br: bufio.NewReaderSize(&loopReader{b: fr}, wsBufSize), limit: wsReadLimit}
	b.SetBytes(int64(len(fr)))
	for b.Loop() {
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanAndRecord(b *testing.B) {
	msg := quotesFrameBytes(10)
	var st connStats
	var qs []quoteRec
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		qs = scanQuotes(qs[:0], msg)
		st.recordQuotes(qs, 1795309388333000, true)
	}
}
