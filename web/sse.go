package web

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
	"quotehub/web/internal/wire"
)

// serveSSE opens one SSE stream. Everything that can be refused is checked
// before the stream opens, so a client gets a JSON error and a status
// instead of an empty stream. The handler returns once the stream is open:
// a goroutine of its own waits for the client to go away, and the hub's
// writer pool writes the events.
func (s *Server) serveSSE(c echo.Context) error {
	ctx := c.Request().Context()
	user, hasUser, err := s.streamUser(c)
	if err != nil {
		return s.writeError(c, err)
	}
	raw, follow := c.QueryParam("symbols"), quotehub.SplitList(c.QueryParam("follow"))
	if raw == "" && len(follow) == 0 {
		return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "symbols is missing or empty: /v1/sse?symbols=A,B (or ?follow=portfolio,watchlist:ID)"))
	}
	ivs, err := candleParam(c.QueryParams())
	if err != nil {
		return s.writeError(c, err)
	}
	var accepted []string
	var rejected []hub.Rejection
	if raw != "" {
		names := quotehub.SplitList(raw)
		if ivs != nil {
			if err := s.opts.Hub.CheckCandleLimit(0, len(quotehub.NormalizeList(names)), ivs); err != nil {
				return s.writeError(c, err)
			}
		}
		if accepted, rejected, err = s.opts.Hub.Resolve(ctx, names); err != nil {
			return s.writeError(c, err)
		}
		if ivs != nil {
			var noCandles []hub.Rejection
			accepted, noCandles = s.opts.Hub.CheckCandles(ctx, accepted)
			rejected = append(rejected, noCandles...)
		}
		if len(accepted) == 0 {
			return s.writeError(c, allRejected(rejected))
		}
	} else if ivs != nil {
		return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "candles needs symbols: /v1/sse?symbols=A,B&candles=1m,1d"))
	}
	if len(follow) > 0 && !hasUser {
		return s.writeError(c, quotehub.Errorf(quotehub.EUnauthorized, "following lists needs a token: add token= or an Authorization header"))
	}
	var prelude bytes.Buffer
	for _, r := range rejected {
		prelude.WriteString("event: error\ndata: ")
		prelude.Write(mustJSON(r))
		prelude.WriteString("\n\n")
	}
	return s.openSSE(c, sseStream{transport: "sse", user: user, hasUser: hasUser, prelude: prelude.Bytes(), symbols: accepted, candles: ivs, follow: follow})
}

// sseStream is what an SSE stream starts with.
type sseStream struct {
	transport string // the hub's name for it: "sse", "events"
	user      quotehub.Principal
	hasUser   bool
	prelude   []byte              // events written right after the headers
	symbols   []string            // subscribed at once
	candles   []quotehub.Interval // a candle stream per symbol and interval, opened at once
	follow    []string            // lists followed at once (needs a user)
	// opened, if set, runs once the stream is open, before the handler
	// returns; ended when it ends.
	opened func(*hub.Client)
	ended  func(*hub.Client)
}

// openSSE opens an SSE stream on the hijacked connection of c, written by
// the hub's writer pool.
func (s *Server) openSSE(c echo.Context, o sseStream) error {
	release, ok := s.guard.openStream(c.Request())
	if !ok {
		return s.writeError(c, quotehub.Errorf(quotehub.ERateLimited, "too many streams from your address; reconnect later"))
	}
	t := &sseTransport{}
	t.closed.init(s.closes, o.transport)
	client := s.opts.Hub.NewClient(t, o.transport)
	if client == nil {
		release()
		return s.writeError(c, quotehub.Errorf(quotehub.ERateLimited, "node over its connection limit; reconnect later"))
	}
	if o.hasUser {
		client.SetUser(o.user, expireSession(client, sseExpired))
	}
	if len(o.follow) > 0 {
		// The lists are read, and the session subscribed, before the
		// stream opens: a list that is not the user's is a 404.
		if err := client.Follow(context.WithoutCancel(c.Request().Context()), nil, o.follow); err != nil {
			client.Close()
			return s.writeError(c, err)
		}
	}

	// The stream is written on the hijacked connection, like a WebSocket:
	// by the hub's writer pool, with non-blocking writes. Its body ends
	// when the connection closes (no chunked encoding), so the response
	// says Connection: close.
	conn, _, err := http.NewResponseController(c.Response()).Hijack()
	if err != nil {
		client.Close()
		release()
		return s.writeError(c, quotehub.Errorf(quotehub.EInternal, "this connection cannot stream (%v)", err))
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
	c.Response().Status, c.Response().Committed = http.StatusOK, true // for the access log
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	head.WriteString("retry: 3000\n\n")
	head.Write(o.prelude)
	t.wire = wire.New(conn, s.opts.UnsentLimit)
	t.wire.OnProgress(client.Progressed)
	t.pace = newPace(s.opts.SSEUnreadAge, t.wire, client.Progressed)
	t.conn = conn
	if err := t.wire.Send(head.Bytes(), false); err != nil {
		client.Close()
		release()
		_ = conn.Close()
		return nil
	}
	t.lastWrite.Store(time.Now().UnixNano())
	client.StartOnDemand(func(err error) { // the client reads EOF: the stream ended
		if ce, ok := hub.IsClose(err); ok {
			t.closed.sent(ce.Code)
		}
		_ = conn.Close()
	})
	client.Attach(context.WithoutCancel(c.Request().Context()), o.symbols)
	if len(o.candles) > 0 {
		client.AttachCandles(context.WithoutCancel(c.Request().Context()), o.symbols, o.candles)
	}
	t.startKeepalive(client, s.opts.SSEKeepalive)
	if o.opened != nil {
		o.opened(client)
	}

	// The client sends nothing; a goroutine of its own waits for it to
	// close the connection (or for the node to), as a WebSocket's reader does.
	rid := c.Response().Header().Get(echo.HeaderXRequestID) // the echo context is reused once the handler returns
	end := func() {
		t.stopKeepalive()
		if o.ended != nil {
			o.ended(client)
		}
		client.Close() // waits for a writer that is still running
		_ = conn.Close()
		release()
		t.closed.ended(rid, client.ID())
	}
	if !s.goStream(func() {
		var b [64]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				break
			}
		}
		end()
	}) {
		end() // the node is shutting down
	}
	return nil
}

// allRejected is the error of a stream whose every symbol was refused:
// invalid_symbol if any was malformed, else unknown_symbol if any is not
// in the catalogue, else the first rejection's (not_found: no candles).
func allRejected(rejected []hub.Rejection) error {
	code := quotehub.EInvalidSymbol
	if !slices.ContainsFunc(rejected, func(r hub.Rejection) bool { return r.Code == code }) {
		code = quotehub.EUnknownSymbol
	}
	if !slices.ContainsFunc(rejected, func(r hub.Rejection) bool { return r.Code == code }) && len(rejected) > 0 {
		code = rejected[0].Code
	}
	for _, r := range rejected {
		if r.Code == code {
			msg := r.Message
			if len(rejected) > 1 {
				msg += " (and " + strconv.Itoa(len(rejected)-1) + " more rejected)"
			}
			return &quotehub.Error{Code: code, Message: msg}
		}
	}
	return &quotehub.Error{Code: quotehub.EInternal, Message: "no symbols accepted"}
}

// sseTransport writes a client's batches as SSE events, all of one batch in
// one write, on a hijacked connection. Control frames are written as they
// are: the only ones an SSE client gets are keepalive comments.
type sseTransport struct {
	wire      *wire.Conn
	conn      net.Conn
	id        uint64       // event counter; only the client's writer touches it
	lastWrite atomic.Int64 // Unix ns of the last write that went out whole
	closed    closeRecord
	pace      *pace // hub.Pacer (nil: pacing off); only the writer touches it

	mu    sync.Mutex
	ended bool
	ka    *time.Timer
}

// frame builds the events of a batch in a buffer from the wire's pool.
func (t *sseTransport) frame(controls [][]byte, quotes []*hub.Update) *[]byte {
	bp := wire.Buf()
	b := (*bp)[:0]
	for _, c := range controls {
		b = append(b, c...)
	}
	for _, u := range quotes {
		t.id++
		if u.Interval != 0 {
			b = append(b, "event: candle\nid: "...)
		} else {
			b = append(b, "event: quote\nid: "...)
		}
		b = strconv.AppendUint(b, t.id, 10)
		b = append(b, "\ndata: "...)
		b = append(b, u.JSON...)
		b = append(b, '\n', '\n')
	}
	*bp = b
	return bp
}

// Write implements hub.Transport.
func (t *sseTransport) Write(controls [][]byte, quotes []*hub.Update) error {
	err := t.wire.SendBuf(t.frame(controls, quotes))
	if err == nil {
		t.lastWrite.Store(time.Now().UnixNano())
	}
	return err
}

// TryWrite implements hub.TryWriter.
func (t *sseTransport) TryWrite(controls [][]byte, quotes []*hub.Update) (bool, error) {
	done, err := t.wire.TrySendBuf(t.frame(controls, quotes))
	if err == nil {
		t.lastWrite.Store(time.Now().UnixNano()) // a kept rest goes out before anything else
	}
	return done, err
}

// FinishWrite implements hub.TryWriter.
func (t *sseTransport) FinishWrite() error { return t.wire.Finish() }

// Hold implements hub.Pacer.
func (t *sseTransport) Hold() time.Duration { return t.pace.Hold() }

// Abort implements hub.Transport: closing the connection fails a stuck
// write at once, which ends the stream.
func (t *sseTransport) Abort(code int, _ string) {
	t.closed.sent(code)
	_ = t.conn.Close()
}

var keepaliveLine = []byte(": keepalive\n\n")

// startKeepalive queues a keepalive comment for c whenever the stream has
// been silent for every, from a timer (no goroutine between keepalives).
func (t *sseTransport) startKeepalive(c *hub.Client, every time.Duration) {
	if every <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ka = time.AfterFunc(every, func() {
		next := every
		if idle := time.Duration(time.Now().UnixNano() - t.lastWrite.Load()); idle >= every {
			c.SendControl(keepaliveLine)
		} else {
			next = every - idle
		}
		t.mu.Lock()
		if !t.ended {
			t.ka.Reset(next)
		}
		t.mu.Unlock()
	})
}

// stopKeepalive stops the keepalive timer for good.
func (t *sseTransport) stopKeepalive() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	if t.ka != nil {
		t.ka.Stop()
	}
}
