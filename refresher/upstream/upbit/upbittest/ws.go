package upbittest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsConn is one accepted WebSocket connection.
type wsConn struct {
	srv *Server
	c   *websocket.Conn
	raw net.Conn // the hijacked TCP connection under c

	lastActive atomic.Int64 // Unix ns of the last message in either direction

	sendMu  sync.Mutex // serialises messages, and DropStream's broken frame
	dropped bool       // guarded by sendMu

	subMu sync.Mutex
	sub   *subscription // guarded by subMu; nil until subscribed
}

// subscription is the ticker part of the latest accepted subscription.
type subscription struct {
	codes        []string
	snapshotOnly bool
	realtimeOnly bool
}

var errDropped = errors.New("upbittest: connection dropped")

// serveWS accepts a WebSocket connection on /websocket/v1 and serves it
// until it closes, the idle timeout expires or the server closes.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	rec := &hijackRecorder{ResponseWriter: w}
	c, err := websocket.Accept(rec, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 16)
	s.wsConns.Add(1)
	wc := &wsConn{srv: s, c: c, raw: rec.conn}
	wc.touch()
	s.mu.Lock()
	s.conns[wc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, wc)
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wc.pump(ctx)
		c.CloseNow() // unblocks the read loop
	}()
	wc.readLoop(ctx)
	cancel()
	c.CloseNow()
	<-done
}

func (wc *wsConn) touch() { wc.lastActive.Store(time.Now().UnixNano()) }

// readLoop handles the client's messages until the connection fails.
func (wc *wsConn) readLoop(ctx context.Context) {
	s := wc.srv
	for {
		_, data, err := wc.c.Read(ctx)
		if err != nil {
			return
		}
		wc.touch()
		msg := bytes.TrimSpace(data)
		switch {
		case string(msg) == "PING":
			s.pings.Add(1)
			err = wc.send(ctx, []byte(`{"status":"UP"}`))
		case len(msg) > 0 && msg[0] == '[':
			err = wc.subscribe(ctx, msg)
		default:
			err = wc.sendError(ctx, "WRONG_FORMAT", "The format is incorrect.")
		}
		if err != nil {
			return
		}
	}
}

// subscribe parses a subscription array, replaces the connection's
// subscription and sends a SNAPSHOT message per known code (unless only
// realtime data was asked for).
func (wc *wsConn) subscribe(ctx context.Context, msg []byte) error {
	s := wc.srv
	var items []map[string]json.RawMessage
	if json.Unmarshal(msg, &items) != nil || len(items) == 0 {
		return wc.sendError(ctx, "WRONG_FORMAT", "The format is incorrect.")
	}
	var ticket string
	if json.Unmarshal(items[0]["ticket"], &ticket) != nil || ticket == "" {
		return wc.sendError(ctx, "NO_TICKET", "The ticket does not exist or is invalid.")
	}
	for {
		n := s.failSubs.Load()
		if n <= 0 {
			break
		}
		if s.failSubs.CompareAndSwap(n, n-1) {
			return wc.sendError(ctx, "WRONG_FORMAT", "The format is incorrect.")
		}
	}
	var sub *subscription
	typed := false
	for _, it := range items[1:] {
		if raw, ok := it["format"]; ok {
			var f string
			if json.Unmarshal(raw, &f) != nil || f != "DEFAULT" { // the fake speaks DEFAULT only
				return wc.sendError(ctx, "WRONG_FORMAT", "The format is incorrect.")
			}
			continue
		}
		raw, ok := it["type"]
		if !ok {
			return wc.sendError(ctx, "NO_TYPE", "The type field does not exist.")
		}
		typed = true
		var typ string
		if json.Unmarshal(raw, &typ) != nil || typ == "" {
			return wc.sendError(ctx, "NO_TYPE", "The type field does not exist.")
		}
		rawCodes, ok := it["codes"]
		if !ok {
			return wc.sendError(ctx, "NO_CODES", "The codes field does not exist.")
		}
		var codes []string
		if json.Unmarshal(rawCodes, &codes) != nil {
			return wc.sendError(ctx, "WRONG_FORMAT", "The format is incorrect.")
		}
		if len(codes) == 0 {
			return wc.sendError(ctx, "INVALID_PARAM", "The codes field is empty.")
		}
		if typ != "ticker" {
			continue // other data types are accepted and never served
		}
		sub = &subscription{
			codes:        codes,
			snapshotOnly: flag(it, "is_only_snapshot", "isOnlySnapshot"),
			realtimeOnly: flag(it, "is_only_realtime", "isOnlyRealtime"),
		}
	}
	if !typed {
		return wc.sendError(ctx, "NO_TYPE", "The type field does not exist.")
	}
	wc.subMu.Lock()
	wc.sub = sub
	wc.subMu.Unlock()
	s.subs.Add(1)
	s.mu.Lock()
	s.lastSub = nil
	if sub != nil {
		s.lastSub = slices.Clone(sub.codes)
	}
	s.mu.Unlock()
	if sub == nil || sub.realtimeOnly {
		return nil
	}
	for _, code := range sub.codes {
		if msg := s.wsMessage(code, "SNAPSHOT"); msg != nil {
			if err := wc.send(ctx, msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// flag reads a boolean subscription flag under either of its names.
func flag(it map[string]json.RawMessage, names ...string) bool {
	for _, n := range names {
		var b bool
		if raw, ok := it[n]; ok && json.Unmarshal(raw, &b) == nil && b {
			return true
		}
	}
	return false
}

// wsMessage renders code's ticker message; REALTIME messages first move
// the market one step. It returns nil for an unknown or delisted code.
func (s *Server) wsMessage(code, streamType string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byCode[code]
	if st == nil || st.delisted {
		return nil
	}
	if streamType == "REALTIME" && !s.frozen {
		st.step(s.seed, s.now())
	}
	return st.wsJSON(streamType)
}

// pump sends REALTIME messages every TickEvery and closes the connection
// once it has been idle for IdleTimeout.
func (wc *wsConn) pump(ctx context.Context) {
	s := wc.srv
	tick := time.NewTicker(s.tickEvery)
	defer tick.Stop()
	idle := time.NewTicker(max(s.idleTimeout/8, 5*time.Millisecond))
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			if time.Since(time.Unix(0, wc.lastActive.Load())) >= s.idleTimeout {
				return
			}
		case <-tick.C:
			wc.subMu.Lock()
			sub := wc.sub
			wc.subMu.Unlock()
			if sub == nil || sub.snapshotOnly {
				continue
			}
			for _, code := range sub.codes {
				if msg := s.wsMessage(code, "REALTIME"); msg != nil {
					if wc.send(ctx, msg) != nil {
						return
					}
				}
			}
		}
	}
}

// send writes one message (binary unless Options.TextFrames).
func (wc *wsConn) send(ctx context.Context, msg []byte) error {
	wc.sendMu.Lock()
	defer wc.sendMu.Unlock()
	if wc.dropped {
		return errDropped
	}
	if wc.srv.silent.Load() {
		return nil // swallowed: the connection stays open and says nothing
	}
	typ := websocket.MessageBinary
	if wc.srv.textFrames {
		typ = websocket.MessageText
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := wc.c.Write(wctx, typ, msg)
	wc.touch()
	return err
}

// sendError sends an error message, whose name is a string on the
// WebSocket API.
func (wc *wsConn) sendError(ctx context.Context, name, message string) error {
	type body struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(map[string]body{"error": {name, message}})
	return wc.send(ctx, b)
}

// drop writes the header and half the payload of a data frame straight to
// the TCP connection, between two whole messages, and closes it.
func (wc *wsConn) drop() {
	wc.sendMu.Lock()
	defer wc.sendMu.Unlock()
	if wc.dropped || wc.raw == nil {
		return
	}
	wc.dropped = true
	payload := []byte(`{"status":"UP"}`)
	wc.subMu.Lock()
	if wc.sub != nil && len(wc.sub.codes) > 0 {
		if m := wc.srv.wsMessage(wc.sub.codes[0], "REALTIME"); m != nil {
			payload = m
		}
	}
	wc.subMu.Unlock()
	op := byte(0x2) // binary
	if wc.srv.textFrames {
		op = 0x1
	}
	frame := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, byte(n))
	case n <= 0xffff:
		frame = append(frame, 126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	default:
		frame = append(frame, 127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	frame = append(frame, payload[:len(payload)/2]...)
	wc.raw.SetWriteDeadline(time.Now().Add(time.Second))
	wc.raw.Write(frame)
	wc.raw.Close()
}
