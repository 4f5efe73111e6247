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

// session runs one connection: dial, subscribe, then read, ping and
// resubscribe until something fails or ctx ends. delivered reports whether
// it received at least one ticker of its subscription.
func (p *Provider) session(ctx context.Context, emit func([]quotehub.Quote)) (delivered bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	conn, resp, err := websocket.Dial(dctx, p.wsURL, &websocket.DialOptions{
		HTTPClient: p.client,
		HTTPHeader: http.Header{"User-Agent": {"quotehub-upbit/1"}},
	})
	cancel()
	if err != nil {
		if resp != nil {
			return false, fmt.Errorf("upbit: stream handshake answered HTTP %d: %w", resp.StatusCode, err)
		}
		return false, fmt.Errorf("upbit: stream dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxWSMessage)

	sctx, stop := context.WithCancel(ctx)
	events := make(chan wsEvent, 64)
	var lastRead atomic.Int64
	lastRead.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			_, data, err := conn.Read(sctx)
			if err != nil {
				select {
				case events <- wsEvent{err: fmt.Errorf("upbit: stream read: %w", err)}:
				case <-sctx.Done():
				}
				return
			}
			lastRead.Store(time.Now().UnixNano())
			for _, ev := range p.decode(data) {
				select {
				case events <- ev:
				case <-sctx.Done():
					return
				}
			}
		}
	}()
	defer func() {
		stop()
		conn.CloseNow()
		wg.Wait()
	}()

	write := func(msg []byte) error {
		wctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, msg)
	}

	// Subscription state of this connection.
	var (
		subVer    uint64          // follow version sent; 0 = none yet
		subSet    map[string]bool // codes sent
		confirmed bool            // a ticker of subSet arrived since
		subLim    = rate.NewLimiter(rate.Every(subscribeEvery), subscribeBurst)
		subTimer  *time.Timer
		subDue    <-chan time.Time // set while a rate-limited resend waits
	)
	defer func() {
		if subTimer != nil {
			subTimer.Stop()
		}
	}()
	resubscribe := func() error {
		codes, ver := p.followed()
		if len(codes) == 0 {
			return errUnfollowed
		}
		if ver == subVer || subDue != nil {
			return nil
		}
		r := subLim.Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			subTimer = time.NewTimer(d)
			subDue = subTimer.C
			return nil
		}
		if err := write(subscribeMessage(codes)); err != nil {
			return fmt.Errorf("upbit: stream subscribe: %w", err)
		}
		subVer, confirmed = ver, false
		subSet = make(map[string]bool, len(codes))
		for _, c := range codes {
			subSet[c] = true
		}
		p.upVer.Store(0)
		p.log.Debug().Int("codes", len(codes)).Msg("upbit: stream subscribed")
		return nil
	}
	if err := resubscribe(); err != nil {
		return false, err
	}

	ping := time.NewTicker(p.pingEvery)
	defer ping.Stop()
	staleAfter := 2*p.pingEvery + p.timeout

	batch := make([]quotehub.Quote, 0, 16)
	index := make(map[string]int)
	take := func(ev wsEvent) error {
		if ev.err != nil {
			return ev.err
		}
		sym := ev.quote.Symbol
		if !subSet[sym] {
			return nil // from an earlier subscription
		}
		if !confirmed {
			confirmed, delivered = true, true
			p.upVer.Store(subVer)
		}
		if i, ok := index[sym]; ok {
			batch[i] = ev.quote // a later message of the same symbol wins
		} else {
			index[sym] = len(batch)
			batch = append(batch, ev.quote)
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return delivered, ctx.Err()
		case <-p.wake:
			if err := resubscribe(); err != nil {
				return delivered, err
			}
		case <-subDue:
			subTimer, subDue = nil, nil
			if err := resubscribe(); err != nil {
				return delivered, err
			}
		case <-ping.C:
			if idle := time.Since(time.Unix(0, lastRead.Load())); idle > staleAfter {
				return delivered, fmt.Errorf("upbit: stream silent for %v", idle.Round(time.Millisecond))
			}
			if err := write([]byte("PING")); err != nil {
				return delivered, fmt.Errorf("upbit: stream ping: %w", err)
			}
		case ev := <-events:
			err := take(ev)
		drain:
			for err == nil && len(batch) < maxEmitBatch {
				select {
				case ev := <-events:
					err = take(ev)
				default:
					break drain
				}
			}
			if len(batch) > 0 {
				emit(slices.Clone(batch))
				batch = batch[:0]
				clear(index)
			}
			if err != nil {
				return delivered, err
			}
		}
	}
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
