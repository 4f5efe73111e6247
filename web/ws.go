package web

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// serveWS runs one WebSocket connection: the handler goroutine reads client
// frames, a second goroutine runs the hub's writer. Whichever ends first
// closes the socket, which ends the other.
func (s *Server) serveWS(c echo.Context) error {
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		OriginPatterns: s.opts.AllowedOrigins,
	})
	if err != nil {
		return nil // Accept has answered (403 for a foreign origin, 4xx for a bad handshake)
	}
	defer conn.CloseNow()
	t := &wsTransport{conn: conn}
	client := s.opts.Hub.NewClient(t, "ws")
	if client == nil {
		_ = conn.Close(websocket.StatusCode(hub.CloseTryAgain), "node over its connection limit")
		return nil
	}
	log := s.log.With().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Str("session", client.ID()).Logger()
	log.Debug().Str("remote", c.RealIP()).Msg("websocket opened")
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

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		err := client.WriteLoop(s.opts.PingInterval, false, func() error { t.ping(s.opts.PongTimeout); return nil })
		var ce *hub.CloseError
		switch {
		case err == nil: // the reader ended the client
		case errors.Is(err, hub.ErrShutdown):
			_ = conn.Close(websocket.StatusGoingAway, "node shutting down")
		case errors.As(err, &ce):
			_ = conn.Close(websocket.StatusCode(ce.Code), ce.Reason)
		default:
			log.Debug().Err(err).Msg("websocket write failed")
			_ = conn.CloseNow()
		}
	}()

	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			break
		}
		client.HandleFrame(ctx, data, typ == websocket.MessageBinary)
	}
	client.Close()
	<-writerDone
	_ = conn.CloseNow()
	t.wait()
	log.Debug().Msg("websocket closed")
	return nil
}

// wsTransport writes a client's batches to a WebSocket: each control frame
// as one message, then every pending quote in one "quotes" message. Writes
// use a context that never ends, so they allocate nothing; the hub's sweeper
// aborts a write that is stuck for the slow-consumer timeout.
type wsTransport struct {
	conn *websocket.Conn
	buf  []byte

	mu    sync.Mutex
	ended bool
	bg    sync.WaitGroup // ping and abort goroutines
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
	t.mu.Unlock()
	t.bg.Wait()
}
