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
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// serveWS accepts one WebSocket connection. A goroutine of its own reads
// client frames; the hub starts a writer goroutine only while there is
// something to write, so an idle connection costs one small goroutine.
// Whichever side ends first closes the socket, which ends the other.
func (s *Server) serveWS(c echo.Context) error {
	conn, err := websocket.Accept(leanHijack{c.Response()}, c.Request(), &websocket.AcceptOptions{
		OriginPatterns: s.opts.AllowedOrigins,
	})
	if err != nil {
		return nil // Accept has answered (403 for a foreign origin, 4xx for a bad handshake)
	}
	t := &wsTransport{conn: conn}
	client := s.opts.Hub.NewClient(t, "ws")
	if client == nil {
		_ = conn.Close(websocket.StatusCode(hub.CloseTryAgain), "node over its connection limit")
		return nil
	}
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
		_ = conn.Close(websocket.StatusCode(ce.Code), ce.Reason)
	})
	t.startPings(s.opts.PingInterval, s.opts.PongTimeout)

	// The handler returns and the connection is read from a goroutine of
	// its own: net/http's per-request state (its buffers, the request, the
	// handler's deep stack) is then freed instead of living as long as the
	// connection.
	started := s.goStream(func() {
		defer conn.CloseNow()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				break
			}
			client.HandleFrame(ctx, data, typ == websocket.MessageBinary)
		}
		client.Close() // waits for a writer that is still running
		_ = conn.CloseNow()
		t.wait()
		log.Debug().Msg("websocket closed")
	})
	if !started { // the node is shutting down
		client.Close()
		_ = conn.Close(websocket.StatusGoingAway, "node shutting down")
		t.wait()
	}
	return nil
}

// Buffer sizes of a hijacked WebSocket connection. net/http hands over a
// 4 KiB reader and a fresh 4 KiB writer; client frames are small (at most
// max_message_bytes, usually tens of bytes), so a small reader saves memory
// on every idle connection, while the writer stays large enough for a
// frame of quotes to leave in one system call.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 4096
)

// leanHijack gives coder/websocket's Accept a hijacked connection with
// wsReadBuffer and wsWriteBuffer bufio buffers instead of net/http's.
type leanHijack struct{ *echo.Response }

// Hijack implements http.Hijacker. Bytes net/http had already read past
// the handshake are carried over into the new reader's buffer.
func (l leanHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := l.Response.Hijack()
	if err != nil {
		return nil, nil, err
	}
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	pre := append([]byte(nil), buffered...)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), conn), max(wsReadBuffer, len(pre)))
	if len(pre) > 0 {
		_, _ = r.Peek(len(pre)) // into the buffer, where Accept looks for them
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (l leanHijack) Unwrap() http.ResponseWriter { return l.Response }

// wsTransport writes a client's batches to a WebSocket: each control frame
// as one message, then every pending quote in one "quotes" message. Writes
// use a context that never ends, so they allocate nothing; the hub's sweeper
// aborts a write that is stuck for the slow-consumer timeout.
type wsTransport struct {
	conn *websocket.Conn
	buf  []byte

	mu     sync.Mutex
	ended  bool
	pinger *time.Timer
	bg     sync.WaitGroup // ping and abort goroutines
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
	ctx := context.Background()
	for _, f := range controls {
		if err := t.conn.Write(ctx, websocket.MessageText, f); err != nil {
			return err
		}
	}
	if len(quotes) == 0 {
		return nil
	}
	b := append(t.buf[:0], quotesHead...)
	for i, u := range quotes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, u.JSON...)
	}
	b = append(b, ']', '}')
	t.buf = b
	if cap(t.buf) > 64<<10 {
		t.buf = nil // don't pin a burst's buffer for the life of the connection
	}
	return t.conn.Write(ctx, websocket.MessageText, b)
}

// Abort implements hub.Transport: the close frame goes out if the socket
// has room; either way the connection ends within coder/websocket's close
// timeout, which also unblocks a stuck write.
func (t *wsTransport) Abort(code int, reason string) {
	t.spawn(func() { _ = t.conn.Close(websocket.StatusCode(code), reason) })
}

// startPings pings the peer every interval from a timer (no goroutine
// between pings).
func (t *wsTransport) startPings(every, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pinger = time.AfterFunc(every, func() {
		t.ping(timeout)
		t.mu.Lock()
		if !t.ended {
			t.pinger.Reset(every)
		}
		t.mu.Unlock()
	})
}

// ping sends a ping in the background; no pong within timeout closes the
// connection.
func (t *wsTransport) ping(timeout time.Duration) {
	t.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := t.conn.Ping(ctx); err != nil {
			_ = t.conn.CloseNow()
		}
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
