package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa
)

// Frame header bits and limits.
const (
	finBit     = 0x80
	rsvBits    = 0x70
	opBits     = 0x0f
	maskBit    = 0x80
	MaxControl = 125 // the largest control frame payload
)

// Close codes the reader sends for a client's protocol violations.
const (
	CloseProtocolError   = 1002
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
)

// AppendHeader appends the header of a final, unmasked (server) frame of
// opcode op carrying n bytes.
func AppendHeader(b []byte, op byte, n int) []byte {
	op |= finBit
	switch {
	case n <= 125:
		return append(b, op, byte(n))
	case n <= 0xffff:
		return append(b, op, 126, byte(n>>8), byte(n))
	default:
		return append(b, op, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendClose appends a close frame with code and reason, the reason cut
// to fit a control frame.
func AppendClose(b []byte, code int, reason string) []byte {
	if len(reason) > MaxControl-2 {
		reason = reason[:MaxControl-2]
	}
	b = AppendHeader(b, OpClose, 2+len(reason))
	b = append(b, byte(code>>8), byte(code))
	return append(b, reason...)
}

// ErrPeerClosed ends a reader whose peer sent a close frame (answered).
var ErrPeerClosed = errors.New("websocket: the peer closed the connection")

// ProtocolError ends a reader whose peer broke the protocol; the reader
// has sent a close frame with Code.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: closed with %d: %s", e.Code, e.Reason)
}

// Reader reads a client's WebSocket messages from br and answers the
// control frames among them itself: a ping with a pong, a close with its
// echo (1002 for a malformed one), a pong by calling onPong. Its replies go
// out through w, like every other frame of the connection. It waits for
// the next frame in a Peek on br, on a shallow stack: an idle connection's
// reader goroutine stays small. Only the reader goroutine calls Next.
type Reader struct {
	br     *bufio.Reader // at least 256 bytes, so a whole control frame fits
	w      *Conn
	limit  int // the largest message, in bytes; larger closes with 1009
	onPong func(payload []byte)
	allow  func() bool // nil, or false for a control frame over the peer's allowance
}

// AllowControl sets the allowance of the peer's control frames: allow is
// called for each one, and a false closes the connection with 1008. Nil
// allows every one. Set it before the first Next.
func (r *Reader) AllowControl(allow func() bool) { r.allow = allow }

// NewReader returns a reader of br replying on w; onPong, if not nil, is
// given each pong's payload (valid only during the call).
func NewReader(br *bufio.Reader, w *Conn, limit int, onPong func(payload []byte)) *Reader {
	return &Reader{br: br, w: w, limit: limit, onPong: onPong}
}

// Next returns the next message: its opcode (OpText or OpBinary) and
// payload, which is the caller's. It ends with ErrPeerClosed, a
// *ProtocolError, or the connection's read error.
func (r *Reader) Next() (op byte, msg []byte, err error) {
	for {
		h, err := r.br.Peek(2)
		if err != nil {
			return 0, nil, err
		}
		fin, fop := h[0]&finBit != 0, h[0]&opBits
		if h[0]&rsvBits != 0 {
			return 0, nil, r.fail(CloseProtocolError, "reserved bits set, and no extension was agreed")
		}
		if h[1]&maskBit == 0 {
			return 0, nil, r.fail(CloseProtocolError, "a client frame must be masked")
		}
		hl := 2
		switch h[1] &^ maskBit {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		hb, err := r.br.Peek(hl + 4) // header and masking key
		if err != nil {
			return 0, nil, err
		}
		var n uint64
		switch hl {
		case 2:
			n = uint64(hb[1] &^ maskBit)
		case 4:
			n = uint64(binary.BigEndian.Uint16(hb[2:4]))
		default:
			n = binary.BigEndian.Uint64(hb[2:10])
		}
		var key [4]byte
		copy(key[:], hb[hl:hl+4])
		if fop >= OpClose {
			if err := r.control(fin, fop, hl+4, n, key); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case fop != OpContinuation && fop != OpText && fop != OpBinary:
			return 0, nil, r.fail(CloseProtocolError, fmt.Sprintf("unknown opcode %#x", fop))
		case fop == OpContinuation && op == 0:
			return 0, nil, r.fail(CloseProtocolError, "a continuation frame without a message to continue")
		case fop != OpContinuation && op != 0:
			return 0, nil, r.fail(CloseProtocolError, "a new message inside a fragmented one")
		case n > uint64(r.limit-len(msg)):
			return 0, nil, r.fail(CloseTooBig, fmt.Sprintf("message over %d bytes", r.limit))
		}
		if fop != OpContinuation {
			op = fop
		}
		_, _ = r.br.Discard(hl + 4)
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(r.br, msg[start:]); err != nil {
			return 0, nil, err
		}
		unmask(msg[start:], key)
		if fin {
			return op, msg, nil
		}
	}
}

// control handles a control frame whose header (hl bytes with the key)
// and n-byte payload start at br's position.
func (r *Reader) control(fin bool, op byte, hl int, n uint64, key [4]byte) error {
	if op != OpClose && op != OpPing && op != OpPong {
		return r.fail(CloseProtocolError, fmt.Sprintf("unknown opcode %#x", op))
	}
	if !fin || n > MaxControl {
		return r.fail(CloseProtocolError, "a control frame must be whole and at most 125 bytes")
	}
	if r.allow != nil && op != OpClose && !r.allow() {
		return r.fail(ClosePolicyViolation, "too many control frames")
	}
	f, err := r.br.Peek(hl + int(n))
	if err != nil {
		return err
	}
	var reply [2 + MaxControl]byte
	payload := reply[2 : 2+n]
	copy(payload, f[hl:])
	unmask(payload, key)
	_, _ = r.br.Discard(len(f))
	switch op {
	case OpPong:
		if r.onPong != nil {
			r.onPong(payload)
		}
	case OpPing:
		reply[0], reply[1] = finBit|OpPong, byte(n)
		if err := r.w.Send(reply[:2+n], false); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	case OpClose:
		// Echo a valid close (RFC 6455, section 5.5.1); answer a malformed
		// one with 1002. If this side's close went first, this was the
		// reply, and nothing is sent (net.ErrClosed).
		reply[0], reply[1] = finBit|OpClose, byte(n)
		if n == 1 || n >= 2 && (!validCloseCode(int(payload[0])<<8|int(payload[1])) || !utf8.Valid(payload[2:])) {
			reply[1], reply[2], reply[3] = 2, byte(CloseProtocolError>>8), byte(CloseProtocolError&0xff)
		}
		_ = r.w.Send(reply[:2+int(reply[1])], true)
		return ErrPeerClosed
	}
	return nil
}

// fail sends a close frame with code and returns the error that ends the
// reader.
func (r *Reader) fail(code int, reason string) error {
	var f [2 + MaxControl]byte
	_ = r.w.Send(AppendClose(f[:0], code, reason), true)
	return &ProtocolError{Code: code, Reason: reason}
}

// unmask applies a client's masking key to a frame's payload.
func unmask(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// validCloseCode reports whether a close frame may carry code (RFC 6455,
// section 7.4: 1000–1003, 1007–1014 and 3000–4999).
func validCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}
