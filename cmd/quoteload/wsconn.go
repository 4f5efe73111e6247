package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// wsConn is a minimal RFC 6455 client connection for ws:// URLs, built for
// the load generator's hot path: one reader goroutine, one reused message
// buffer, a small bufio.Reader and no allocation per frame. It only reads
// data messages; the only frames it writes are control frames (pong,
// close), each masked with its own random key. Close errors are
// websocket.CloseError values, so websocket.CloseStatus classifies them as
// it does coder/websocket's.
//
// ReadMessage must be called by one goroutine at a time; Close, CloseNow
// and the writes ReadMessage makes (pong, close echo) may run concurrently.
type wsConn struct {
	nc    net.Conn
	br    *bufio.Reader
	limit int    // largest message accepted, in bytes
	msg   []byte // the message buffer for messages not read in place, reused (grown, never shrunk)
	ctrl  [maxControlPayload]byte

	stopWatch func() bool // stops the connect-phase context watch

	wmu       sync.Mutex // serialises writes
	closeSent bool       // under wmu

	closeOnce sync.Once
	closed    chan struct{} // closed by CloseNow
}

const (
	// wsBufSize is each connection's bufio.Reader size: frame headers and
	// small frames are read through it; a payload larger than what is
	// buffered is read straight into the message buffer.
	wsBufSize = 4096
	// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	// maxControlPayload is RFC 6455's limit on a control frame payload.
	maxControlPayload = 125
	// wsCloseWait bounds how long a graceful close waits for the server's
	// close frame (coder/websocket waits 5 s too).
	wsCloseWait = 5 * time.Second
	// wsWriteTimeout bounds one control frame write.
	wsWriteTimeout = 5 * time.Second
)

// Opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

var (
	// errWSProtocol wraps every protocol violation by the server (the
	// connection answers it with close 1002).
	errWSProtocol = errors.New("websocket protocol error")
	// errWSTooBig is a message over the read limit (answered with 1009).
	errWSTooBig = errors.New("websocket message over the read limit")
	// errWSHandshake wraps every handshake failure after the response
	// arrived (bad status, headers or accept key).
	errWSHandshake = errors.New("websocket handshake failed")
)

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// dialWS opens a WebSocket to u (scheme ws or http) through d and performs
// the opening handshake. ctx bounds the dial, the handshake and, until
// EndConnect is called, every read (e.g. of the welcome message): when it
// ends, blocked I/O fails. It returns the server's response whenever one
// was read (so that a non-101 status can be reported), even with an error.
func dialWS(ctx context.Context, d *net.Dialer, u *url.URL, limit int) (*wsConn, *http.Response, error) {
	return dialWSWrap(ctx, d, u, limit, nil)
}

// dialWSWrap is dialWS with the connected socket passed through wrap (nil:
// used as is) before anything is read or written, e.g. to pace its reads.
func dialWSWrap(ctx context.Context, d *net.Dialer, u *url.URL, limit int, wrap func(net.Conn) net.Conn) (*wsConn, *http.Response, error) {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, nil, err
	}
	if wrap != nil {
		nc = wrap(nc)
	}
	c := &wsConn{
		nc:     nc,
		br:     bufio.NewReaderSize(nc, wsBufSize),
		limit:  limit,
		closed: make(chan struct{}),
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c.stopWatch = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
	resp, err := c.handshake(u)
	if err != nil {
		c.CloseNow()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, resp, err
	}
	return c, resp, nil
}

// handshake writes the upgrade request and checks the response.
func (c *wsConn) handshake(u *url.URL) (*http.Response, error) {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(raw[:])

	req := make([]byte, 0, 256+len(u.RawQuery)+len(u.Path))
	req = append(req, "GET "...)
	req = append(req, u.RequestURI()...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, u.Host...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	req = append(req, "\r\nUser-Agent: quoteload\r\n\r\n"...)
	if _, err := c.nc.Write(req); err != nil {
		return nil, err
	}

	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, fmt.Errorf("%w: status %s", errWSHandshake, resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return resp, fmt.Errorf("%w: Upgrade %q", errWSHandshake, resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return resp, fmt.Errorf("%w: Connection %q", errWSHandshake, resp.Header.Values("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key); got != want {
		return resp, fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", errWSHandshake, got, want)
	}
	// Nothing was offered, so nothing may be accepted.
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return resp, fmt.Errorf("%w: unrequested extensions %q", errWSHandshake, ext)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		return resp, fmt.Errorf("%w: unrequested subprotocol %q", errWSHandshake, p)
	}
	return resp, nil
}

// wsAccept is the Sec-WebSocket-Accept value for key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// EndConnect ends the connect phase: the dial context no longer bounds
// reads. It reports false when that context had already ended (the
// connection is then unusable: its deadline may be in the past).
func (c *wsConn) EndConnect() bool {
	if !c.stopWatch() {
		return false
	}
	return c.nc.SetDeadline(time.Time{}) == nil
}

// ReadMessage reads the next data message and reports whether it is text.
// The returned slice is valid until the next call: it is the bufio buffer
// itself when the whole message was already buffered, else the
// connection's message buffer (grown as needed, up to the read limit). Pings are answered, pongs skipped; a close frame is answered
// (unless a close was already sent) and returned as a websocket.CloseError.
// Any protocol violation is answered with close 1002 (1009 for a message
// over the limit) and returned as an error.
func (c *wsConn) ReadMessage() ([]byte, bool, error) {
	msg := c.msg[:0]
	inMsg, text := false, false
	for {
		fin, op, n, err := c.readHeader()
		if err != nil {
			return nil, false, err
		}
		switch op {
		case opText, opBinary, opCont:
			switch {
			case op == opCont && !inMsg:
				return nil, false, c.fail(websocket.StatusProtocolError, "continuation frame without a message")
			case op != opCont && inMsg:
				return nil, false, c.fail(websocket.StatusProtocolError, "new data frame inside a fragmented message")
			case op != opCont:
				inMsg, text = true, op == opText
			}
			if n > uint64(c.limit-len(msg)) {
				return nil, false, c.failErr(websocket.StatusMessageTooBig, fmt.Errorf("%w (%d bytes)", errWSTooBig, c.limit))
			}
			if fin && op != opCont && n <= uint64(c.br.Buffered()) {
				// A whole message already in the bufio buffer (the usual
				// case): return it in place, without a copy. It stays
				// valid until the next read from br.
				p, _ := c.br.Peek(int(n))
				_, _ = c.br.Discard(int(n))
				return p, text, nil
			}
			need := len(msg) + int(n)
			if need > cap(msg) {
				grown := make([]byte, len(msg), max(need, 2*cap(msg), 512))
				copy(grown, msg)
				msg = grown
				c.msg = grown
			}
			if _, err := io.ReadFull(c.br, msg[len(msg):need]); err != nil {
				return nil, false, err
			}
			msg = msg[:need]
			if fin {
				return msg, text, nil
			}
		case opPing:
			p := c.ctrl[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, false, err
			}
			if err := c.writeControl(opPong, p, false); err != nil {
				return nil, false, err
			}
		case opPong:
			if _, err := c.br.Discard(int(n)); err != nil {
				return nil, false, err
			}
		case opClose:
			p := c.ctrl[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, false, err
			}
			ce := websocket.CloseError{Code: websocket.StatusNoStatusRcvd}
			if n > 0 {
				if n < 2 {
					return nil, false, c.fail(websocket.StatusProtocolError, "close payload of 1 byte")
				}
				ce.Code = websocket.StatusCode(binary.BigEndian.Uint16(p))
				if !validWireCloseCode(ce.Code) {
					return nil, false, c.fail(websocket.StatusProtocolError, fmt.Sprintf("invalid close code %d", ce.Code))
				}
				if !utf8.Valid(p[2:]) {
					return nil, false, c.fail(websocket.StatusProtocolError, "close reason is not UTF-8")
				}
				ce.Reason = string(p[2:])
			}
			// Echo the close (code and reason, as coder/websocket does);
			// writeControl skips it when a close was already sent.
			var echo []byte
			if n > 0 {
				echo = p
			}
			_ = c.writeControl(opClose, echo, true)
			return nil, false, ce
		}
	}
}

// readHeader reads one frame header and checks what a client must refuse.
func (c *wsConn) readHeader() (fin bool, op byte, n uint64, err error) {
	h, err := c.br.Peek(2)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return false, 0, 0, err
	}
	b0, b1 := h[0], h[1]
	fin, op = b0&0x80 != 0, b0&0x0F
	if b0&0x70 != 0 {
		return false, 0, 0, c.fail(websocket.StatusProtocolError, "reserved bits set")
	}
	if b1&0x80 != 0 {
		return false, 0, 0, c.fail(websocket.StatusProtocolError, "masked server frame")
	}
	switch op {
	case opCont, opText, opBinary, opClose, opPing, opPong:
	default:
		return false, 0, 0, c.fail(websocket.StatusProtocolError, fmt.Sprintf("unknown opcode %#x", op))
	}
	n = uint64(b1 & 0x7F)
	hl := 2
	switch n {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if hl > 2 {
		if h, err = c.br.Peek(hl); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, 0, 0, err
		}
		if hl == 4 {
			n = uint64(binary.BigEndian.Uint16(h[2:]))
		} else {
			n = binary.BigEndian.Uint64(h[2:])
			if n>>63 != 0 {
				return false, 0, 0, c.fail(websocket.StatusProtocolError, "payload length with the top bit set")
			}
		}
	}
	if op >= opClose {
		if !fin {
			return false, 0, 0, c.fail(websocket.StatusProtocolError, "fragmented control frame")
		}
		if n > maxControlPayload {
			return false, 0, 0, c.fail(websocket.StatusProtocolError, fmt.Sprintf("control frame of %d bytes", n))
		}
	}
	_, _ = c.br.Discard(hl)
	return fin, op, n, nil
}

// fail answers a protocol violation with a close frame and returns the
// error that ends the read loop.
func (c *wsConn) fail(code websocket.StatusCode, what string) error {
	return c.failErr(code, fmt.Errorf("%w: %s", errWSProtocol, what))
}

func (c *wsConn) failErr(code websocket.StatusCode, err error) error {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	_ = c.writeControl(opClose, p[:], true)
	return err
}

// writeControl writes one masked control frame (payload ≤ 125 bytes).
// Nothing is written after a close frame; a close frame marks the close as
// sent.
func (c *wsConn) writeControl(op byte, payload []byte, isClose bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	if isClose {
		c.closeSent = true
	}
	var b [6 + maxControlPayload]byte
	b[0] = 0x80 | op
	b[1] = 0x80 | byte(len(payload))
	binary.LittleEndian.PutUint32(b[2:6], rand.Uint32())
	for i, x := range payload {
		b[6+i] = x ^ b[2+i&3]
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	_, err := c.nc.Write(b[:6+len(payload)])
	return err
}

// Close performs the closing handshake while another goroutine reads: it
// sends a close frame with code and reason (≤ 123 bytes), waits up to
// wsCloseWait for the reader to end (it ends on the server's close frame
// or EOF, and the reader's owner then calls CloseNow), and closes the
// socket.
func (c *wsConn) Close(code websocket.StatusCode, reason string) {
	if c.sendClose(code, reason) == nil {
		t := time.NewTimer(wsCloseWait)
		select {
		case <-c.closed:
		case <-t.C:
		}
		t.Stop()
	}
	c.CloseNow()
}

// CloseSync performs the closing handshake when no other goroutine reads:
// it sends a close frame, reads (and drops) frames until the server's
// close frame or EOF, at most wsCloseWait, and closes the socket.
func (c *wsConn) CloseSync(code websocket.StatusCode, reason string) {
	if c.sendClose(code, reason) == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(wsCloseWait))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
	}
	c.CloseNow()
}

func (c *wsConn) sendClose(code websocket.StatusCode, reason string) error {
	var p [maxControlPayload]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	n := 2 + copy(p[2:], reason)
	return c.writeControl(opClose, p[:n], true)
}

// CloseNow closes the socket without a closing handshake. It is safe to
// call more than once and concurrently.
func (c *wsConn) CloseNow() {
	c.closeOnce.Do(func() {
		if c.stopWatch != nil {
			c.stopWatch()
		}
		close(c.closed)
		_ = c.nc.Close()
	})
}

// validWireCloseCode reports whether a close code may appear on the wire
// (as coder/websocket checks it).
func validWireCloseCode(code websocket.StatusCode) bool {
	switch code {
	case 1004, websocket.StatusNoStatusRcvd, websocket.StatusAbnormalClosure, websocket.StatusTLSHandshake:
		return false
	}
	return code >= websocket.StatusNormalClosure && code <= websocket.StatusBadGateway ||
		code >= 3000 && code <= 4999
}
