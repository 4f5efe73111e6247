package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// wsReadLimit is the largest server frame a connection accepts (a quotes
// frame of 200 symbols is about 50 KB).
const wsReadLimit = 16 << 20

// wsURL is connection i's WebSocket URL (on node i mod n) that subscribes
// to syms at connect.
func (r *runner) wsURL(i int, syms []string) string {
	u := *r.base(i)
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/v1/ws"
	u.RawQuery = r.streamQuery(syms)
	return u.String()
}

// wsClient is one client WebSocket as runWS drives it: wsConn for ws://
// targets, coder/websocket (coderClient) for wss:// ones.
type wsClient interface {
	// ReadMessage returns the next data message (valid until the next
	// call) and whether it is text.
	ReadMessage() ([]byte, bool, error)
	// EndConnect ends the connect phase: the dial context no longer
	// bounds reads. False means the connection is no longer usable.
	EndConnect() bool
	// Close does the closing handshake while another goroutine reads,
	// CloseSync when none does; CloseNow drops the connection.
	Close(code websocket.StatusCode, reason string)
	CloseSync(code websocket.StatusCode, reason string)
	CloseNow()
}

// dialWSClient dials connection c's WebSocket, bounded by dctx until
// EndConnect.
func (r *runner) dialWSClient(dctx context.Context, c *conn) (wsClient, *http.Response, error) {
	if r.base(c.id).Scheme == "http" {
		u := *r.base(c.id)
		u.Path += "/v1/ws"
		u.RawPath = ""
		u.RawQuery = r.streamQuery(c.syms)
		var wrap func(net.Conn) net.Conn
		if c.st.slow {
			wrap = func(nc net.Conn) net.Conn { return r.paceConn(nc, r.cfg.SlowRate) }
		}
		ws, resp, err := dialWSWrap(dctx, r.dialer(c.id), &u, wsReadLimit, wrap)
		if err != nil {
			return nil, resp, err
		}
		return ws, resp, nil
	}
	ws, resp, err := websocket.Dial(dctx, r.wsURL(c.id, c.syms), &websocket.DialOptions{HTTPClient: r.connClient(c)})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(wsReadLimit)
	return &coderClient{ws: ws, ctx: dctx}, resp, nil
}

// coderClient is a wsClient over coder/websocket.
type coderClient struct {
	ws  *websocket.Conn
	ctx context.Context // bounds reads: the dial context until EndConnect
	buf []byte
}

func (c *coderClient) ReadMessage() ([]byte, bool, error) {
	var typ websocket.MessageType
	var err error
	c.buf, typ, err = readMessage(c.ctx, c.ws, c.buf)
	return c.buf, typ == websocket.MessageText, err
}

func (c *coderClient) EndConnect() bool {
	c.ctx = context.Background()
	return true
}

func (c *coderClient) Close(code websocket.StatusCode, reason string) { _ = c.ws.Close(code, reason) }
func (c *coderClient) CloseSync(code websocket.StatusCode, reason string) {
	_ = c.ws.Close(code, reason)
}
func (c *coderClient) CloseNow() { _ = c.ws.CloseNow() }

// runWS runs one WebSocket connection: dial, handshake and welcome (the
// connect latency) within the connect timeout, then read frames until the
// run closes the connection with 1000.
func (r *runner) runWS(rampCtx context.Context, c *conn, connected func(bool)) {
	st := &c.st
	t0 := time.Now()
	dctx, cancel := context.WithTimeout(rampCtx, r.cfg.ConnectTimeout)
	defer cancel()
	ws, resp, err := r.dialWSClient(dctx, c)
	if err != nil {
		st.addErr(connectErrKind(err, resp, dctx, rampCtx))
		connected(false)
		return
	}
	defer ws.CloseNow()

	// The welcome frame ends the connect phase.
	buf, text, err := ws.ReadMessage()
	if err != nil {
		st.addErr(connectErrKind(err, nil, dctx, rampCtx))
		connected(false)
		return
	}
	if kind, _ := frameKind(buf); !text || kind != "welcome" {
		st.addErr("handshake_no_welcome")
		connected(false)
		return
	}
	if !ws.EndConnect() {
		st.addErr(connectErrKind(dctx.Err(), nil, dctx, rampCtx))
		connected(false)
		return
	}
	st.connectDur = time.Since(t0)
	st.connected = true
	cancel()
	if !r.setClosers(c,
		func() { ws.Close(websocket.StatusNormalClosure, "load test done") },
		ws.CloseNow) {
		connected(true)
		ws.CloseSync(websocket.StatusNormalClosure, "load test done")
		return
	}
	connected(true)

	r.wsReadLoop(st, ws.ReadMessage)
}

// wsReadLoop reads and accounts messages until read fails. read returns
// the next message (valid until the next call) and whether it is text.
func (r *runner) wsReadLoop(st *connStats, read func() ([]byte, bool, error)) {
	subscribed := false
	var qs []quoteRec
	for {
		buf, text, err := read()
		if err != nil {
			st.endWindow()
			code := websocket.CloseStatus(err)
			switch {
			case !r.stopping.Load():
				r.lost(st, dropReason(err))
				if code != -1 {
					st.addErr(fmt.Sprintf("close_%d", code))
				} else {
					st.addErr("read")
				}
			case code != -1 && code != websocket.StatusNormalClosure && code != websocket.StatusGoingAway:
				st.addErr(fmt.Sprintf("close_%d", code))
			}
			return
		}
		now := time.Now().UnixMicro()
		measuring := r.phase.Load() == phaseMeasure
		if measuring {
			st.frames++
			st.bytes += uint64(len(buf))
		}
		if !text {
			st.addErr("binary_frame")
			continue
		}
		kind, cf := frameKind(buf)
		switch kind {
		case "quotes":
			if cf != nil {
				qs = scanQuotes(qs[:0], cf.Quotes)
			} else {
				qs = scanQuotes(qs[:0], buf)
			}
			if !subscribed {
				st.addErr("quote_before_subscribed")
			}
			st.recordQuotes(qs, now, measuring)
		case "subscribed":
			subscribed = true
			for _, rj := range cf.Rejected {
				st.addErr("rejected_" + rj.Code)
			}
		case "error":
			st.addErr("error_frame_" + cf.Code)
		case "candle":
			st.recordCandle(buf, now, measuring)
		case "pong", "unsubscribed":
		default:
			st.addErr("unexpected_frame")
		}
	}
}

// dropReason names why a connection the run did not close ended:
// close_<code> for a close frame from the server (4000: slow consumer),
// reset for a TCP reset, eof for a connection closed without a close frame
// (what a WebSocket client reports as 1006), timeout, or read.
func dropReason(err error) string {
	switch code := websocket.CloseStatus(err); {
	case code != -1:
		return fmt.Sprintf("close_%d", code)
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case isTimeout(err):
		return "timeout"
	}
	return "read"
}

// lost counts connection st as dropped (lost before the run closed it)
// for reason.
func (r *runner) lost(st *connStats, reason string) {
	st.dropped = true
	st.dropReason = reason
	r.nDropped.Add(1)
	if r.windows != nil && r.phase.Load() == phaseMeasure {
		r.windows.drop(st.group(), time.Now().UnixMicro())
	}
}

// readMessage reads one whole message into buf (reused, grown as needed).
func readMessage(ctx context.Context, ws *websocket.Conn, buf []byte) ([]byte, websocket.MessageType, error) {
	typ, rd, err := ws.Reader(ctx)
	if err != nil {
		return buf, 0, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(512, cap(buf)))...)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, typ, nil
		}
		if err != nil {
			return buf, typ, err
		}
	}
}

// connectErrKind names a failed connection attempt: handshake_<status>
// when the server answered with an HTTP error, connect_timeout,
// connect_cancelled (the run ended), dial (TCP connect failed) or
// handshake (anything else before the connection was up).
func connectErrKind(err error, resp *http.Response, dctx, rampCtx context.Context) string {
	var opErr *net.OpError
	switch {
	case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != 0:
		return fmt.Sprintf("handshake_%d", resp.StatusCode)
	case websocket.CloseStatus(err) != -1: // closed before welcome, e.g. 1013 over the limit
		return fmt.Sprintf("handshake_close_%d", websocket.CloseStatus(err))
	case rampCtx.Err() != nil && !errors.Is(rampCtx.Err(), context.DeadlineExceeded):
		return "connect_cancelled"
	case dctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "connect_timeout"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "dial"
	default:
		return "handshake"
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
