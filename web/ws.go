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
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
	"quotehub/web/internal/wire"
)

// serveWS accepts one WebSocket connection. A goroutine of its own reads
// client frames; the hub starts a writer goroutine only while there is
// something to write, so an idle connection costs one small goroutine.
// Whichever side ends first closes the socket, which ends the other.
func (s *Server) serveWS(c echo.Context) error {
	if origin := c.Request().Header.Get("Origin"); origin != "" && !s.originAllowed(c.Request(), origin) {
		return s.writeError(c, quotehub.Errorf(quotehub.EForbidden, "origin %s may not open a WebSocket here", origin))
	}
	user, hasUser, err := s.streamUser(c)
	if err != nil {
		return s.writeError(c, err) // before the upgrade: a 401 in the error shape
	}
	t, err := acceptWS(c.Response(), c.Request(), s.opts.UnsentLimit, s.opts.Hub.Options().MaxMessageBytes)
	if err != nil {
		return nil // Accept has answered (4xx for a bad handshake)
	}
	t.closed.init(s.closes, "ws")
	rid := c.Response().Header().Get(echo.HeaderXRequestID) // the echo context is reused once the handler returns
	release, ok := s.guard.openStream(c.Request())
	if !ok {
		t.refuse(closeOverStreams, "too many connections from your address", rid)
		return nil
	}
	t.reader.AllowControl(s.guard.controlLimiter(c.Request()))
	client := s.opts.Hub.NewClient(t, "ws")
	if client == nil {
		release()
		t.refuse(hub.CloseTryAgain, "node over its connection limit", rid)
		return nil
	}
	t.wire.OnProgress(client.Progressed) // before the first write: StartOnDemand below
	if hasUser {
		client.SetUser(user, expireSession(client, hub.ErrorFrame(nil, errTokenExpired)))
	}
	t.pace = newWSPace(s.opts.UnreadAge, t.wire, client.Progressed, client.Resume)
	log := s.log
	if s.log.Debug().Enabled() { // a child logger costs memory for as long as the connection lives
		log = s.log.With().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Str("session", client.ID()).Logger()
		log.Debug().Str("remote", c.RealIP()).Msg("websocket opened")
	}

	// Requests are handled under a context that lives as long as the hub,
	// never the request's (hijacked) context.
	ctx := context.Background()
	client.SendControl(client.WelcomeFrame())
	if c.QueryParams().Has("symbols") {
		if err := subscribeAtConnect(ctx, client, c.QueryParams()); err != nil {
			client.SendError(nil, err)
		}
	}
	client.StartOnDemand(func(err error) {
		var ce *hub.CloseError
		if !errors.As(err, &ce) {
			log.Debug().Err(err).Msg("websocket write failed")
			_ = t.conn.CloseNow()
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
		defer t.conn.CloseNow()
		t.read(func(binary bool, data []byte) { client.HandleFrame(ctx, data, binary) })
		client.Close() // waits for a writer that is still running
		_ = t.conn.CloseNow()
		t.wait()
		release()
		t.closed.ended(rid, client.ID())
	})
	if !started { // the node is shutting down
		close(t.readDone) // nothing reads: close does not wait for the peer's reply
		client.Close()
		t.close(hub.CloseGoingAway, "node shutting down")
		t.wait()
		release()
	}
	return nil
}

// acceptWS completes a WebSocket handshake on a lean hijacked connection
// and returns its transport: unsent is Options.UnsentLimit, limit the
// largest client message. The caller has checked the origin.
//
// coder/websocket checks the handshake and computes its answer; from then
// on the connection's bytes are the wire's: wire.Conn writes every frame
// and wire.Reader reads the client's, so coder/websocket's Conn is kept
// only to close the socket (it is never read from or written to, and its
// writer refuses).
func acceptWS(w *echo.Response, r *http.Request, unsent, limit int) (*wsTransport, error) {
	orig := w.Writer
	hold := &hold101{ResponseWriter: orig}
	w.Writer = hold
	defer func() { w.Writer = orig }()
	h := &leanHijack{Response: w, hold: hold, unsent: unsent}
	conn, err := websocket.Accept(h, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // serveWS checked the origin, and answers a refusal in the protocol's error shape
	})
	if err != nil {
		return nil, err
	}
	t := &wsTransport{conn: conn, wire: h.wire, readDone: make(chan struct{})}
	t.reader = wire.NewReader(h.br, h.wire, limit, t.ponged)
	return t, nil
}

// refuse closes a connection just accepted with code, without waiting
// for the peer's reply.
func (t *wsTransport) refuse(code int, reason, requestID string) {
	t.closed.sent(code)
	var f [2 + wire.MaxControl]byte
	_ = t.wire.Send(wire.AppendClose(f[:0], code, reason), true)
	_ = t.conn.CloseNow()
	t.closed.ended(requestID, "")
}

// read hands the peer's messages to handle until the connection ends.
func (t *wsTransport) read(handle func(binary bool, data []byte)) {
	defer close(t.readDone) // before the caller's client.Close: its writer may be in t.close, waiting for this
	for {
		op, data, err := t.reader.Next()
		if err != nil {
			var pe *wire.ProtocolError
			if errors.As(err, &pe) {
				t.closed.sent(pe.Code)
			}
			return
		}
		handle(op == wire.OpBinary, data)
	}
}

// wsReadBuffer is the size of a hijacked WebSocket connection's reader.
// net/http hands over a 4 KiB reader and a fresh 4 KiB writer; both would
// live as long as the connection. Client frames are rare and small, and a
// larger message just takes a few reads, so a small reader saves memory on
// every idle connection; it holds any whole control frame (131 bytes),
// which wire.Reader needs. There is no writer: every frame is the wire's.
const wsReadBuffer = 256

// leanHijack gives coder/websocket's Accept a hijacked connection with a
// wsReadBuffer reader and a writer that refuses, and keeps the reader and
// the connection's wire for the transport.
type leanHijack struct {
	*echo.Response
	hold   *hold101
	unsent int
	br     *bufio.Reader
	wire   *wire.Conn
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
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		pre := append([]byte(nil), buffered...)
		l.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), conn), max(wsReadBuffer, len(pre)))
		_, _ = l.br.Peek(len(pre)) // into the buffer, where Accept looks for them
	} else {
		l.br = bufio.NewReaderSize(conn, wsReadBuffer)
	}
	l.wire = wire.New(conn, l.unsent)
	if l.hold != nil && l.hold.held {
		var hs bytes.Buffer
		hs.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
		_ = l.Response.Header().Write(&hs)
		hs.WriteString("\r\n")
		l.wire.Hold(hs.Bytes())
	}
	return conn, bufio.NewReadWriter(l.br, bufio.NewWriterSize(wire.RefuseWrites{}, 16)), nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (l *leanHijack) Unwrap() http.ResponseWriter { return l.Response }

// wsTransport writes a client's batches to a WebSocket: each control frame
// as one message, then every pending quote in one "quotes" message, all in
// one write. The hub's sweeper aborts a write that has not moved for the
// slow-consumer timeout.
type wsTransport struct {
	conn     *websocket.Conn // the handshake's; used only to close the socket
	wire     *wire.Conn
	reader   *wire.Reader
	readDone chan struct{} // closed when the reader goroutine stops reading
	closed   closeRecord
	pace     *wsPace // hub.Pacer (nil: pacing off)

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
	return t.wire.SendBuf(t.frame(controls, quotes))
}

// TryWrite implements hub.TryWriter.
func (t *wsTransport) TryWrite(controls [][]byte, quotes []*hub.Update) (bool, error) {
	return t.wire.TrySendBuf(t.frame(controls, quotes))
}

// frame frames a batch, with the pacer's ping after it if it asks for one
// and the batch has quotes: pacing is about quotes, and a batch of control
// frames alone (the welcome, a reply, an error before a close) goes as the
// protocol says, with the question left for the next quotes.
func (t *wsTransport) frame(controls [][]byte, quotes []*hub.Update) *[]byte {
	bp := frame(controls, quotes)
	if len(quotes) > 0 && t.pace != nil {
		*bp = t.pace.appendAsk(*bp, t.wire.Written())
	}
	return bp
}

// FinishWrite implements hub.TryWriter.
func (t *wsTransport) FinishWrite() error { return t.wire.Finish() }

// Hold implements hub.Pacer.
func (t *wsTransport) Hold() time.Duration { return t.pace.Hold() }

// frame frames the control frames, each as one message, then the quotes
// in one "quotes" message, then each candle as a "candle" message, in a
// buffer from the wire's pool.
func frame(controls [][]byte, quotes []*hub.Update) *[]byte {
	bp := wire.Buf()
	b := (*bp)[:0]
	for _, f := range controls {
		b = wire.AppendHeader(b, wire.OpText, len(f))
		b = append(b, f...)
	}
	if len(quotes) > 0 {
		n, nq := len(quotesHead)+2, 0 // head, "]}"
		for _, u := range quotes {
			if u.Interval == 0 {
				n += len(u.JSON)
				nq++
			}
		}
		if nq > 0 {
			n += nq - 1 // commas
			b = wire.AppendHeader(b, wire.OpText, n)
			b = append(b, quotesHead...)
			i := 0
			for _, u := range quotes {
				if u.Interval != 0 {
					continue
				}
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, u.JSON...)
				i++
			}
			b = append(b, ']', '}')
		}
		if nq < len(quotes) {
			b = appendCandles(b, quotes)
		}
	}
	*bp = b
	return bp
}

var candleHead = []byte(`{"type":"candle",`)

// appendCandles appends each candle of updates as one "candle" message,
// in the outbox's order (a period's final candle before the next one).
func appendCandles(b []byte, updates []*hub.Update) []byte {
	for _, u := range updates {
		if u.Interval == 0 {
			continue
		}
		b = wire.AppendHeader(b, wire.OpText, len(candleHead)+len(u.JSON)-1)
		b = append(b, candleHead...)
		b = append(b, u.JSON[1:]...)
	}
	return b
}

// closeTimeout bounds a close handshake, as coder/websocket's does.
const closeTimeout = 5 * time.Second

// Abort implements hub.Transport.
func (t *wsTransport) Abort(code int, reason string) {
	t.spawn(func() { t.close(code, reason) })
}

// close sends a close frame and waits for the peer's reply (which ends the
// reader goroutine) before closing the socket; within closeTimeout either
// way, which also ends a write stuck on a peer that does not read.
func (t *wsTransport) close(code int, reason string) {
	t.closed.sent(code)
	stop := time.AfterFunc(closeTimeout, func() { _ = t.conn.CloseNow() })
	defer stop.Stop()
	var f [2 + wire.MaxControl]byte
	_ = t.wire.Send(wire.AppendClose(f[:0], code, reason), true) // if a close already went out, its reply is awaited all the same
	<-t.readDone
	_ = t.conn.CloseNow()
}

// ponged records that the peer answered, and gives the pacer the answer.
func (t *wsTransport) ponged(payload []byte) {
	t.answered.Store(true)
	t.pace.answer(payload)
}

// pingFrame is the server's ping: no payload.
var pingFrame = []byte{0x80 | wire.OpPing, 0}

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
		switch l.look(now, t.answered.Load(), t.wire.State()) {
		case closeDead:
			_ = t.conn.CloseNow()
			return
		case closeStalled:
			stalled()
			return
		case sendPing:
			t.answered.Store(false)
			if sent, _ := t.wire.TrySend(pingFrame); sent {
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
