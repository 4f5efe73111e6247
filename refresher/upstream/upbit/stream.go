package upbit

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"quotehub"
	"quotehub/internal/backoff"
)

// Limits of the stream.
const (
	maxWSMessage = 1 << 20 // largest message read
	maxEmitBatch = 256     // most quotes per emit call
	// Upbit allows 5 data-request messages per second and 100 per minute on
	// a connection; subscriptions stay under both.
	subscribeEvery = 650 * time.Millisecond
	subscribeBurst = 4
)

// errUnfollowed ends a session when no symbol is followed any more.
var errUnfollowed = errors.New("upbit: no symbol followed")

// Follow replaces the set of followed symbols. Strings that cannot be
// market codes are ignored, duplicates count once. It never blocks: it
// stores the set and wakes Stream, which sends Upbit the whole new
// subscription (a subscription replaces the previous one), opens a
// connection if there was none, or closes it if the set is empty.
func (p *Provider) Follow(symbols []string) {
	set := make([]string, 0, len(symbols))
	for _, s := range symbols {
		if validCode(s) {
			set = append(set, s)
		}
	}
	slices.Sort(set)
	set = slices.Compact(set)
	p.followMu.Lock()
	if slices.Equal(set, p.follow) {
		p.followMu.Unlock()
		return
	}
	p.follow = set
	p.followVer.Add(1)
	p.followMu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// followed returns the followed set (never modified in place) and its
// version.
func (p *Provider) followed() ([]string, uint64) {
	p.followMu.Lock()
	defer p.followMu.Unlock()
	return p.follow, p.followVer.Load()
}

// Connected reports whether the stream is connected and subscribed to the
// set last given to Follow: true from the first ticker received after that
// subscription was sent, false as soon as Follow changes the set (until the
// new subscription delivers), and whenever the connection is down.
func (p *Provider) Connected() bool {
	v := p.upVer.Load()
	return v != 0 && v == p.followVer.Load()
}

// Stream connects to Options.WSURL, subscribes to the ticker of the
// followed symbols and calls emit with the quotes it receives (SNAPSHOT and
// REALTIME messages alike, mapped exactly like Fetch's, at most one quote
// per symbol per call, as many as have arrived without waiting), until ctx
// ends; it then returns nil. It implements quotehub.Streamer.
//
// While no symbol is followed it holds no connection. It sends the text
// message PING every Options.PingEvery, and on any failure (a dropped
// connection, an error message from Upbit, a connection that stays silent)
// it reconnects and resubscribes after a backoff with full jitter. emit is
// called from Stream's goroutine only, never after Stream returns, and no
// goroutine started by Stream outlives it. Only one Stream may run at a
// time; a second call returns an error at once.
func (p *Provider) Stream(ctx context.Context, emit func([]quotehub.Quote)) error {
	if !p.streaming.CompareAndSwap(false, true) {
		return errors.New("upbit: Stream is already running")
	}
	defer p.streaming.Store(false)
	defer p.upVer.Store(0)
	failures := 0
	for ctx.Err() == nil {
		if codes, _ := p.followed(); len(codes) == 0 {
			select {
			case <-ctx.Done():
			case <-p.wake:
			}
			continue
		}
		delivered, err := p.session(ctx, emit)
		p.upVer.Store(0)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errUnfollowed):
			failures = 0
			p.log.Debug().Msg("upbit: stream closed, nothing to follow")
			continue
		case delivered:
			failures = 0
		}
		d := backoff.Delay(failures, p.reconnectMin, p.reconnectMax, nil)
		failures++
		p.log.Warn().Err(err).Dur("retry_in", d).Int("failures", failures).Msg("upbit: stream down")
		if backoff.Sleep(ctx, d) != nil {
			return nil
		}
	}
	return nil
}

// wsEvent is what the reader hands the session loop: a quote, or an error
// that ends the session.
type wsEvent struct {
	quote quotehub.Quote
	err   error
}

// serverError is an {"error":{...}} message from Upbit's WebSocket.
type serverError struct{ name, message string }

func (e *serverError) Error() string {
	return fmt.Sprintf("upbit: stream error %s: %s", e.name, e.message)
}

// session is one connection of Stream, from the subscription to the end:
// Provider.session dials and starts the reader, run then subscribes,
// pings, resubscribes and gathers quotes until something fails. Its
// fields belong to run's goroutine, except events and lastRead, which the
// reader feeds.
type session struct {
	p      *Provider
	conn   *websocket.Conn
	emit   func([]quotehub.Quote)
	events chan wsEvent
	// lastRead is when the reader last got a message (Unix nanoseconds).
	lastRead atomic.Int64

	// Subscription state of the connection.
	subVer    uint64          // follow version sent; 0 = none yet
	subSet    map[string]bool // codes sent
	confirmed bool            // a ticker of subSet arrived since
	delivered bool            // a ticker of any subscription arrived
	subLim    *rate.Limiter
	subTimer  *time.Timer
	subDue    <-chan time.Time // set while a rate-limited resend waits

	// Quotes gathered for the next emit, at most one per symbol.
	batch []quotehub.Quote
	index map[string]int // symbol → position in batch
}

// session runs one connection: dial, subscribe, then read, ping and
// resubscribe until something fails or ctx ends. delivered reports whether
// it received at least one ticker of its subscription.
func (p *Provider) session(ctx context.Context, emit func([]quotehub.Quote)) (delivered bool, err error) {
	conn, err := p.dial(ctx)
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()
	s := &session{
		p:      p,
		conn:   conn,
		emit:   emit,
		events: make(chan wsEvent, 64),
		subLim: rate.NewLimiter(rate.Every(subscribeEvery), subscribeBurst),
		batch:  make([]quotehub.Quote, 0, 16),
		index:  make(map[string]int),
	}
	s.lastRead.Store(time.Now().UnixNano())
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.read(rctx) })
	defer func() {
		stop()
		conn.CloseNow()
		wg.Wait()
		if s.subTimer != nil {
			s.subTimer.Stop()
		}
	}()
	err = s.run(ctx)
	return s.delivered, err
}

// dial opens the WebSocket within the provider's timeout.
func (p *Provider) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, p.wsURL, &websocket.DialOptions{
		HTTPClient: p.client,
		HTTPHeader: http.Header{"User-Agent": {"quotehub-upbit/1"}},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("upbit: stream handshake answered HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("upbit: stream dial: %w", err)
	}
	conn.SetReadLimit(maxWSMessage)
	return conn, nil
}

// read hands the events of every message to run, then the error that
// ended the connection, until ctx ends.
func (s *session) read(ctx context.Context) {
	for {
		_, data, err := s.conn.Read(ctx)
		if err != nil {
			select {
			case s.events <- wsEvent{err: fmt.Errorf("upbit: stream read: %w", err)}:
			case <-ctx.Done():
			}
			return
		}
		s.lastRead.Store(time.Now().UnixNano())
		for _, ev := range s.p.decode(data) {
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}
}

// run subscribes, then serves the session until it fails or ctx ends:
// follow changes and due resends resubscribe, the ping ticker pings, and
// events are gathered into emits.
func (s *session) run(ctx context.Context) error {
	if err := s.resubscribe(ctx); err != nil {
		return err
	}
	ping := time.NewTicker(s.p.pingEvery)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.p.wake:
			err = s.resubscribe(ctx)
		case <-s.subDue:
			s.subTimer, s.subDue = nil, nil
			err = s.resubscribe(ctx)
		case <-ping.C:
			err = s.ping(ctx)
		case ev := <-s.events:
			err = s.gather(ev)
		}
		if err != nil {
			return err
		}
	}
}

// write sends one text message within the provider's timeout.
func (s *session) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, s.p.timeout)
	defer cancel()
	return s.conn.Write(wctx, websocket.MessageText, msg)
}

// resubscribe sends the followed set when it differs from the one sent,
// or, when the subscription rate limit says not yet, sets subDue for when
// it may. An empty set ends the session with errUnfollowed.
func (s *session) resubscribe(ctx context.Context) error {
	codes, ver := s.p.followed()
	if len(codes) == 0 {
		return errUnfollowed
	}
	if ver == s.subVer || s.subDue != nil {
		return nil
	}
	r := s.subLim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		s.subTimer = time.NewTimer(d)
		s.subDue = s.subTimer.C
		return nil
	}
	if err := s.write(ctx, subscribeMessage(codes)); err != nil {
		return fmt.Errorf("upbit: stream subscribe: %w", err)
	}
	s.subVer, s.confirmed = ver, false
	s.subSet = make(map[string]bool, len(codes))
	for _, c := range codes {
		s.subSet[c] = true
	}
	s.p.upVer.Store(0)
	s.p.log.Debug().Int("codes", len(codes)).Msg("upbit: stream subscribed")
	return nil
}

// ping sends PING, or ends the session when nothing was read for two ping
// periods plus the timeout.
func (s *session) ping(ctx context.Context) error {
	staleAfter := 2*s.p.pingEvery + s.p.timeout
	if idle := time.Since(time.Unix(0, s.lastRead.Load())); idle > staleAfter {
		return fmt.Errorf("upbit: stream silent for %v", idle.Round(time.Millisecond))
	}
	if err := s.write(ctx, []byte("PING")); err != nil {
		return fmt.Errorf("upbit: stream ping: %w", err)
	}
	return nil
}

// gather takes ev and the events already waiting, up to maxEmitBatch
// quotes, and flushes them in one emit. An error event stops the
// gathering and is returned, after the quotes before it are emitted.
func (s *session) gather(ev wsEvent) error {
	err := s.take(ev)
more:
	for err == nil && len(s.batch) < maxEmitBatch {
		select {
		case ev := <-s.events:
			err = s.take(ev)
		default:
			break more
		}
	}
	s.flush()
	return err
}

// take adds the quote of ev to the batch, where a later quote of a symbol
// replaces the earlier one, or returns the error of ev. Quotes of symbols
// outside the current subscription (from an earlier one) are dropped; the
// first of the subscription marks the stream up.
func (s *session) take(ev wsEvent) error {
	if ev.err != nil {
		return ev.err
	}
	sym := ev.quote.Symbol
	if !s.subSet[sym] {
		return nil
	}
	if !s.confirmed {
		s.confirmed, s.delivered = true, true
		s.p.upVer.Store(s.subVer)
	}
	if i, ok := s.index[sym]; ok {
		s.batch[i] = ev.quote
	} else {
		s.index[sym] = len(s.batch)
		s.batch = append(s.batch, ev.quote)
	}
	return nil
}

// flush emits the batch, if it has quotes, and empties it.
func (s *session) flush() {
	if len(s.batch) == 0 {
		return
	}
	s.emit(slices.Clone(s.batch))
	s.batch = s.batch[:0]
	clear(s.index)
}

// decode turns one WebSocket message (a JSON object, or an array of them
// in the list formats) into events: ticker quotes and server errors.
// {"status":"UP"}, other message types and malformed tickers give none;
// malformed ones are logged (sampled).
func (p *Provider) decode(data []byte) []wsEvent {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	objs := []json.RawMessage{data}
	if data[0] == '[' {
		if err := json.Unmarshal(data, &objs); err != nil {
			p.sampled.Warn().Err(err).Msg("upbit: undecodable stream message")
			return nil
		}
	}
	var out []wsEvent
	for _, raw := range objs {
		var m struct {
			tickerJSON
			Type   string `json:"type"`
			Status string `json:"status"`
			Error  *struct {
				Name    json.RawMessage `json:"name"`
				Message string          `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			p.sampled.Warn().Err(err).Msg("upbit: undecodable stream message")
			continue
		}
		switch {
		case m.Error != nil:
			name := string(m.Error.Name)
			var s string
			if json.Unmarshal(m.Error.Name, &s) == nil {
				name = s
			}
			p.log.Warn().Str("name", name).Str("error_message", m.Error.Message).Msg("upbit: stream error message")
			out = append(out, wsEvent{err: &serverError{name: name, message: m.Error.Message}})
		case m.Status != "":
			// {"status":"UP"}: the answer to PING
		case m.Type == "ticker":
			if m.Code == nil || *m.Code == "" {
				p.sampled.Warn().Str("reason", "missing code").Msg("upbit: dropped a malformed stream ticker")
				continue
			}
			q, reason := toQuote(*m.Code, &m.tickerJSON)
			if reason != "" {
				p.sampled.Warn().Str("market", *m.Code).Str("reason", reason).Msg("upbit: dropped a malformed stream ticker")
				continue
			}
			out = append(out, wsEvent{quote: q})
		}
	}
	return out
}

// subscribeMessage is the subscription array for the ticker of codes, with
// a fresh ticket.
func subscribeMessage(codes []string) []byte {
	type ticket struct {
		Ticket string `json:"ticket"`
	}
	type ticker struct {
		Type           string   `json:"type"`
		Codes          []string `json:"codes"`
		IsOnlyRealtime bool     `json:"is_only_realtime"`
	}
	type format struct {
		Format string `json:"format"`
	}
	b, _ := json.Marshal([]any{
		ticket{newTicket()},
		ticker{Type: "ticker", Codes: codes, IsOnlyRealtime: false},
		format{"DEFAULT"},
	})
	return b
}

// newTicket returns a random UUID (version 4) string.
func newTicket() string {
	var u [16]byte
	crand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
