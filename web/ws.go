package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"golang.org/x/sys/unix"

	"quotehub"
	"quotehub/hub"
)

// serveWS accepts one WebSocket connection. A goroutine of its own reads
// client frames; the hub starts a writer goroutine only while there is
// something to write, so an idle connection costs one small goroutine.
// Whichever side ends first closes the socket, which ends the other.
func (s *Server) serveWS(c echo.Context) error {
	if origin := c.Request().Header.Get("Origin"); origin != "" && !s.originAllowed(c.Request(), origin) {
		return s.writeError(c, quotehub.Errorf(quotehub.EForbidden, "origin %s may not open a WebSocket here", origin))
	}
	t, err := acceptWS(c.Response(), c.Request(), s.opts.UnsentLimit)
	if err != nil {
		return nil // Accept has answered (4xx for a bad handshake)
	}
	conn := t.conn
	client := s.opts.Hub.NewClient(t, "ws")
	if client == nil {
		_ = conn.Close(websocket.StatusCode(hub.CloseTryAgain), "node over its connection limit")
		return nil
	}
	t.wire.progress = client.Progressed // before the first write: StartOnDemand below
	log := s.log
	if s.log.Debug().Enabled() { // a child logger costs memory for as long as the connection lives
		log = s.log.With().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Str("session", client.ID()).Logger()
		log.Debug().Str("remote", c.RealIP()).Msg("websocket opened")
	}
	conn.SetReadLimit(int64(s.opts.Hub.Options().MaxMessageBytes))

	// Requests are handled under a context that lives as long as the hub,
	// never the request's (hijacked) context.
	ctx := context.Background()
	client.SendControl(client.WelcomeFrame())
	if c.QueryParams().Has("symbols") {
		if err := client.Subscribe(ctx, nil, quotehub.SplitList(c.QueryParam("symbols"))); err != nil {
			client.SendError(nil, err)
		}
	}
	client.StartOnDemand(func(err error) {
		var ce *hub.CloseError
		if !errors.As(err, &ce) {
			log.Debug().Err(err).Msg("websocket write failed")
			_ = conn.CloseNow()
			return
		}
		// A close handshake waits for the peer; bound how many run at once
		// (a shutdown closes every connection together).
		s.closing <- struct{}{}
		defer func() { <-s.closing }()
		t.close(ce.Code, ce.Reason)
	})
	t.startPings(s.opts.PingInterval, s.opts.PongTimeout, s.opts.Hub.Options().SlowTimeout, client.AbortSlow)

	// The handler returns and the connection is read from a goroutine of
	// its own: net/http's per-request state (its buffers, the request, the
	// handler's deep stack) is then freed instead of living as long as the
	// connection.
	started := s.goStream(func() {
		defer conn.CloseNow()
		t.read(ctx, func(typ websocket.MessageType, data []byte) {
			client.HandleFrame(ctx, data, typ == websocket.MessageBinary)
		})
		client.Close() // waits for a writer that is still running
		_ = conn.CloseNow()
		t.wait()
		log.Debug().Msg("websocket closed")
	})
	if !started { // the node is shutting down
		close(t.readDone) // nothing reads: close does not wait for the peer's reply
		client.Close()
		t.close(hub.CloseGoingAway, "node shutting down")
		t.wait()
	}
	return nil
}

// acceptWS completes a WebSocket handshake on a lean hijacked connection
// and returns its transport; unsent is Options.UnsentLimit. The caller has
// checked the origin.
func acceptWS(w *echo.Response, r *http.Request, unsent int) (*wsTransport, error) {
	orig := w.Writer
	hold := &hold101{ResponseWriter: orig}
	w.Writer = hold
	defer func() { w.Writer = orig }()
	h := &leanHijack{Response: w, hold: hold, unsent: unsent}
	t := &wsTransport{readDone: make(chan struct{})}
	conn, err := websocket.Accept(h, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // serveWS checked the origin, and answers a refusal in the protocol's error shape
		OnPongReceived:     func(context.Context, []byte) { t.ponged() },
	})
	if err != nil {
		return nil, err
	}
	t.conn, t.wire = conn, h.wire
	return t, nil
}

// read hands the peer's messages to handle until the connection ends.
// Between messages it waits in wire.await, on a shallow stack:
// coder/websocket's Read waits several frames deeper, which would double
// the stack of every idle connection's reader goroutine.
func (t *wsTransport) read(ctx context.Context, handle func(websocket.MessageType, []byte)) {
	defer close(t.readDone) // before the caller's client.Close: its writer may be in t.close, waiting for this
	for {
		if err := t.wire.await(t.ponged); err != nil {
			return
		}
		typ, data, err := t.conn.Read(ctx)
		if err != nil {
			return
		}
		handle(typ, data)
	}
}

// Buffer sizes of a hijacked WebSocket connection. net/http hands over a
// 4 KiB reader and a fresh 4 KiB writer; both would live as long as the
// connection. Client frames are rare and small, and a larger message just
// takes a few reads, so a small reader saves memory on every idle
// connection; it holds any whole control frame (131 bytes), which
// wsWire.await needs. coder/websocket's writer only carries control frames
// (127 bytes at most, unmasked), because the transport writes its frames
// to the wire itself.
const (
	wsReadBuffer  = 256
	wsWriteBuffer = 128
)

// leanHijack gives coder/websocket's Accept a hijacked connection with
// wsReadBuffer and wsWriteBuffer bufio buffers instead of net/http's, and
// routes its writes through a wsWire, which it keeps for the transport.
type leanHijack struct {
	*echo.Response
	hold   *hold101
	unsent int
	wire   *wsWire
}

// hold101 keeps net/http from writing the 101 response itself: the wire
// sends it together with the first frames (the welcome), which saves a
// system call and a wake-up of the client per connection. Other statuses
// (a refused handshake) go through.
type hold101 struct {
	http.ResponseWriter
	held bool
}

func (h *hold101) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		h.held = true
		return
	}
	h.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer that hijacks.
func (h *hold101) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack implements http.Hijacker. Bytes net/http had already read past
// the handshake are carried over into the new reader's buffer.
func (l *leanHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := l.Response.Hijack()
	if err != nil {
		return nil, nil, err
	}
	var r *bufio.Reader
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		pre := append([]byte(nil), buffered...)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), conn), max(wsReadBuffer, len(pre)))
		_, _ = r.Peek(len(pre)) // into the buffer, where Accept looks for them
	} else {
		r = bufio.NewReaderSize(conn, wsReadBuffer)
	}
	l.wire = newWire(conn, r, l.unsent)
	if l.hold != nil && l.hold.held {
		var hs bytes.Buffer
		hs.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
		_ = l.Response.Header().Write(&hs)
		hs.WriteString("\r\n")
		l.wire.hs = hs.Bytes()
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(l.wire, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (l *leanHijack) Unwrap() http.ResponseWriter { return l.Response }

// wsWire is a WebSocket's byte stream, beneath coder/websocket. An SSE
// stream writes through one too (sendPooled, trySendPooled, finish).
//
// Writes come from two sides: coder/websocket, for the control frames it
// sends (a pong to a ping it read, a close frame), and the transport,
// which frames the hub's messages, pings and close frames itself and sends
// each batch in one write. Frames never interleave: coder/websocket flushes
// every control frame whole (wsWriteBuffer holds the largest), and each
// side writes whole frames under mu.
//
// Reads are coder/websocket's, except between messages, when the reader
// goroutine waits in await: it answers pings and takes pongs itself, so an
// idle connection's goroutine never parks deep inside coder/websocket.
// Only the reader goroutine touches br. For that reason the transport
// never calls coder/websocket's Close (whose close handshake reads) while
// the reader runs; see wsTransport.close.
type wsWire struct {
	net.Conn
	br  *bufio.Reader
	raw syscall.RawConn // for writes that must not block; nil if the conn has no file descriptor

	// progress is called whenever a blocking write moved (the socket took
	// some of it); set before the first write. Nil: nobody is told.
	progress func()

	mu     sync.Mutex
	closed bool    // a close frame went out; nothing may follow it
	hs     []byte  // the 101 response, until the first write carries it
	rest   []byte  // what tryWriteFrames could not write; goes out before anything else
	restBP *[]byte // rest's pooled buffer
}

// newWire returns the wire of conn, read through br (nil for an SSE
// stream, which reads nothing but the close). unsent bounds what the
// socket holds that the kernel has not sent yet (see Options.UnsentLimit);
// 0 leaves the kernel's default.
func newWire(conn net.Conn, br *bufio.Reader, unsent int) *wsWire {
	w := &wsWire{Conn: conn, br: br}
	if sc, ok := conn.(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
	}
	if w.raw != nil && unsent > 0 {
		_ = w.raw.Control(func(fd uintptr) {
			// Best effort: a socket that is not TCP keeps the kernel's default.
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, unsent)
		})
	}
	return w
}

// send writes b whole, blocking until the socket has taken it. w.mu is held.
func (w *wsWire) send(b []byte) error {
	if w.raw == nil {
		_, err := w.Conn.Write(b)
		return err
	}
	_, err := w.write(b, true)
	return err
}

// write writes b to the socket's file descriptor: all of it, waiting for
// room when block is set, else what the socket takes at once. It calls
// progress whenever a blocking write moves. It reports how much went out.
// w.raw is not nil and w.mu is held.
func (w *wsWire) write(b []byte, block bool) (n int, err error) {
	var werr error
	err = w.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
				if block && w.progress != nil {
					w.progress()
				}
			}
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				return !block // blocking: wait until the socket can take more
			case err != nil:
				werr = err
				return true
			case m == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err == nil && werr != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Source: w.LocalAddr(), Addr: w.RemoteAddr(), Err: werr}
	}
	return n, err
}

// tryControl writes a small frame of the transport's own (a ping) if the
// socket takes it now and no other write is under way or kept; it reports
// whether the frame went out. Unlike writeFrames it never waits, neither
// for the peer nor for a write that does.
func (w *wsWire) tryControl(f []byte) (bool, error) {
	if !w.mu.TryLock() {
		return false, nil // a write is under way, perhaps waiting for the peer
	}
	defer w.mu.Unlock()
	if w.closed {
		return false, net.ErrClosed
	}
	if w.rest != nil || w.raw == nil {
		return false, nil
	}
	n, err := w.write(f, false)
	if err == nil && n > 0 && n < len(f) {
		err = w.send(f[n:]) // the socket took part of a few bytes: the rest fits at once
	}
	return n > 0, err
}

// sockState is what the kernel says of a connection's send side.
type sockState struct {
	known       bool   // the kernel answered (a TCP socket on Linux)
	outstanding bool   // bytes not sent yet, or sent and not acknowledged
	acked       uint64 // bytes the peer has acknowledged so far
}

// state asks the kernel how far the peer has taken what was written.
func (w *wsWire) state() sockState {
	var st sockState
	if w.raw == nil {
		return st
	}
	_ = w.raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		st = sockState{known: true, outstanding: info.Notsent_bytes > 0 || info.Unacked > 0, acked: info.Bytes_acked}
	})
	return st
}

// WebSocket frame bytes (RFC 6455, section 5.2): the first byte of an
// unfragmented frame of each kind, and the mask bit.
const (
	wsFinText  = 0x81
	wsFinClose = 0x88
	wsFinPing  = 0x89
	wsFinPong  = 0x8a
	wsMasked   = 0x80
	wsMaxCtl   = 125 // largest control frame payload
)

// Write carries coder/websocket's frames, each whole. Once a close frame
// has gone out, a second one (coder/websocket answering the peer's reply
// to ours) is dropped.
func (w *wsWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.finishLocked(); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0] == wsFinClose {
		if w.closed {
			return len(p), nil
		}
		w.closed = true
	}
	if err := w.send(w.withHS(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrames writes frames the transport built, unless a close frame
// already went out; a close frame among them is written last.
func (w *wsWire) writeFrames(b []byte, closing bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.finishLocked(); err != nil {
		return err
	}
	if w.closed {
		return net.ErrClosed
	}
	w.closed = closing
	return w.send(w.withHS(b))
}

// sendPooled writes the frames in *bp, a framePool buffer, and gives the
// buffer back.
func (w *wsWire) sendPooled(bp *[]byte) error {
	err := w.writeFrames(*bp, false)
	putFrame(bp)
	return err
}

// trySendPooled is sendPooled without blocking: the wire writes the frames
// in *bp as far as the socket takes them and reports whether that was all.
// If not, it keeps *bp and writes the rest before anything else (finish,
// or the next write from either side); either way the buffer goes back to
// framePool once written.
func (w *wsWire) trySendPooled(bp *[]byte) (done bool, err error) {
	done, err = w.tryWriteFrames(bp)
	if done {
		putFrame(bp)
	}
	return done, err
}

// tryWriteFrames is trySendPooled but for giving back the buffer: when it
// reports true, *bp is the caller's again.
func (w *wsWire) tryWriteFrames(bp *[]byte) (done bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rest != nil {
		return false, errors.New("websocket: a kept write is not finished") // the hub never does this
	}
	if w.closed {
		return true, net.ErrClosed
	}
	b := w.withHS(*bp)
	n := 0
	if w.raw != nil {
		if n, err = w.write(b, false); err != nil {
			return true, err
		}
	}
	if n == len(b) {
		return true, nil
	}
	w.rest, w.restBP = b[n:], bp
	return false, nil
}

// finish writes what tryWriteFrames kept, blocking.
func (w *wsWire) finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finishLocked()
}

// withHS returns b behind the held 101 response, if it was not sent yet,
// so that both go out in one write; w.mu is held.
func (w *wsWire) withHS(b []byte) []byte {
	if w.hs == nil {
		return b
	}
	b = append(w.hs, b...)
	w.hs = nil
	return b
}

// finishLocked writes what tryWriteFrames kept, if anything; w.mu is held.
func (w *wsWire) finishLocked() error {
	if w.rest == nil {
		return nil
	}
	err := w.send(w.rest)
	putFrame(w.restBP)
	w.rest, w.restBP = nil, nil
	return err
}

// await waits for the start of the peer's next message. Pings are
// answered and pongs reported to ponged here; a close frame is answered
// (unless this side sent one first) and ends the wait with errPeerClosed.
// Any other frame (a message, or something malformed, which
// coder/websocket rejects) is left for coder/websocket's Read. Handling
// control frames here keeps the reader goroutine out of coder/websocket's
// deeper stack for the frames most connections ever send.
func (w *wsWire) await(ponged func()) error {
	for {
		h, err := w.br.Peek(2)
		if err != nil {
			return err
		}
		if h[0] != wsFinPing && h[0] != wsFinPong && h[0] != wsFinClose || h[1]&wsMasked == 0 || int(h[1]&^wsMasked) > wsMaxCtl {
			return nil
		}
		n := int(h[1] &^ wsMasked)
		f, err := w.br.Peek(2 + 4 + n)
		if err != nil {
			return err
		}
		var reply [2 + wsMaxCtl]byte
		key := f[2:6]
		for i, c := range f[6:] {
			reply[2+i] = c ^ key[i&3]
		}
		switch f[0] {
		case wsFinPong:
			ponged()
		case wsFinPing:
			reply[0], reply[1] = wsFinPong, byte(n)
			if err := w.writeFrames(reply[:2+n], false); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
		case wsFinClose:
			// Echo a valid close (RFC 6455, section 5.5.1); answer a
			// malformed one with 1002.
			reply[0], reply[1] = wsFinClose, byte(n)
			if n == 1 || n >= 2 && (!validCloseCode(int(reply[2])<<8|int(reply[3])) || !utf8.Valid(reply[4:2+n])) {
				reply[1], reply[2], reply[3] = 2, byte(hub.CloseProtocol>>8), byte(hub.CloseProtocol&0xff)
			}
			_ = w.writeFrames(reply[:2+int(reply[1])], true) // net.ErrClosed: ours went first, this was the reply
			_, _ = w.br.Discard(len(f))
			return errPeerClosed
		}
		_, _ = w.br.Discard(len(f))
	}
}

// errPeerClosed ends a reader whose peer sent a close frame.
var errPeerClosed = errors.New("websocket: the peer closed the connection")

// validCloseCode reports whether a close frame may carry code (RFC 6455,
// section 7.4: 1000–1003, 1007–1014 and 3000–4999).
func validCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// appendWSHeader appends the header of an unmasked final text frame
// carrying n bytes (RFC 6455, section 5.2).
func appendWSHeader(b []byte, n int) []byte {
	switch {
	case n <= 125:
		return append(b, wsFinText, byte(n))
	case n <= 0xffff:
		return append(b, wsFinText, 126, byte(n>>8), byte(n))
	default:
		return append(b, wsFinText, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// framePool holds the buffers batches are framed in: a connection holds
// one only while it writes.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledFrame caps the buffers framePool keeps, so one burst to a
// client of many symbols does not pin a large buffer.
const maxPooledFrame = 64 << 10

// wsTransport writes a client's batches to a WebSocket: each control frame
// as one message, then every pending quote in one "quotes" message, all in
// one write. The hub's sweeper aborts a write that is stuck for the
// slow-consumer timeout.
type wsTransport struct {
	conn     *websocket.Conn
	wire     *wsWire
	readDone chan struct{} // closed when the reader goroutine stops reading

	answered atomic.Bool // a pong came since the last ping

	mu     sync.Mutex
	ended  bool
	pinger *time.Timer
	bg     sync.WaitGroup // close and ping goroutines
}

// spawn runs f in the background unless the connection has ended.
func (t *wsTransport) spawn(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return
	}
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		f()
	}()
}

var quotesHead = []byte(`{"type":"quotes","quotes":[`)

// Write implements hub.Transport.
func (t *wsTransport) Write(controls [][]byte, quotes []*hub.Update) error {
	return t.wire.sendPooled(frame(controls, quotes))
}

// TryWrite implements hub.TryWriter.
func (t *wsTransport) TryWrite(controls [][]byte, quotes []*hub.Update) (bool, error) {
	return t.wire.trySendPooled(frame(controls, quotes))
}

// FinishWrite implements hub.TryWriter.
func (t *wsTransport) FinishWrite() error { return t.wire.finish() }

// putFrame gives a frame buffer back to framePool, unless it grew too big.
func putFrame(bp *[]byte) {
	if cap(*bp) <= maxPooledFrame {
		*bp = (*bp)[:0]
		framePool.Put(bp)
	}
}

// frame frames the control frames, each as one message, then the quotes
// in one "quotes" message, in a buffer from framePool.
func frame(controls [][]byte, quotes []*hub.Update) *[]byte {
	bp := framePool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, f := range controls {
		b = appendWSHeader(b, len(f))
		b = append(b, f...)
	}
	if len(quotes) > 0 {
		n := len(quotesHead) + len(quotes) - 1 + 2 // head, commas, "]}"
		for _, u := range quotes {
			n += len(u.JSON)
		}
		b = appendWSHeader(b, n)
		b = append(b, quotesHead...)
		for i, u := range quotes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, u.JSON...)
		}
		b = append(b, ']', '}')
	}
	*bp = b
	return bp
}

// closeTimeout bounds a close handshake, as coder/websocket's does.
const closeTimeout = 5 * time.Second

// Abort implements hub.Transport.
func (t *wsTransport) Abort(code int, reason string) {
	t.spawn(func() { t.close(code, reason) })
}

// close sends a close frame and waits for the peer's reply (which ends the
// reader goroutine) before closing the socket; within closeTimeout either
// way, which also ends a write stuck on a peer that does not read. It
// plays coder/websocket's Close, whose handshake would read beside the
// reader goroutine.
func (t *wsTransport) close(code int, reason string) {
	stop := time.AfterFunc(closeTimeout, func() { _ = t.conn.CloseNow() })
	defer stop.Stop()
	if len(reason) > wsMaxCtl-2 {
		reason = reason[:wsMaxCtl-2]
	}
	var f [2 + wsMaxCtl]byte
	f[0], f[1], f[2], f[3] = wsFinClose, byte(2+len(reason)), byte(code>>8), byte(code)
	n := 4 + copy(f[4:], reason)
	_ = t.wire.writeFrames(f[:n], true) // if a close already went out, its reply is awaited all the same
	<-t.readDone
	_ = t.conn.CloseNow()
}

// ponged records that the peer answered.
func (t *wsTransport) ponged() { t.answered.Store(true) }

// startPings watches the peer's liveness from a timer (no goroutine
// between looks): a ping every interval and a pong within timeout once the
// peer has taken everything before the ping; while data waits for the
// peer, progress in what it acknowledges stands in for the pong (see
// liveness). stalled is called for a peer that takes nothing for stall.
func (t *wsTransport) startPings(every, timeout, stall time.Duration, stalled func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := &liveness{every: every, timeout: timeout, stall: stall}
	l.start(time.Now())
	t.pinger = time.AfterFunc(every, func() {
		t.mu.Lock()
		if t.ended {
			t.mu.Unlock()
			return
		}
		t.bg.Add(1)
		t.mu.Unlock()
		defer t.bg.Done()

		// The firings of one timer never overlap, so l needs no lock.
		now := time.Now()
		switch l.look(now, t.answered.Load(), t.wire.state()) {
		case closeDead:
			_ = t.conn.CloseNow()
			return
		case closeStalled:
			stalled()
			return
		case sendPing:
			t.answered.Store(false)
			if sent, _ := t.wire.tryControl([]byte{wsFinPing, 0}); sent {
				l.pinged(now)
			}
		}
		next := l.wait(now)
		t.mu.Lock()
		if !t.ended {
			t.pinger.Reset(next)
		}
		t.mu.Unlock()
	})
}

// wait waits for the transport's background goroutines.
func (t *wsTransport) wait() {
	t.mu.Lock()
	t.ended = true
	if t.pinger != nil {
		t.pinger.Stop()
	}
	t.mu.Unlock()
	t.bg.Wait()
}
