package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"quotehub"
)

// Resolve checks the symbols of one request, in the protocol's order:
// normalise and de-duplicate; refuse an empty list (bad_request) or more
// than MaxSymbols distinct names (too_many_symbols) before any look-up;
// then reject malformed names (invalid_symbol) and names the catalogue does
// not know (unknown_symbol). It returns the accepted symbols in request order.
func (h *Hub) Resolve(ctx context.Context, raw []string) (accepted []string, rejected []Rejection, err error) {
	names := quotehub.NormalizeList(raw)
	if len(names) == 0 {
		return nil, nil, badRequest("no symbols given")
	}
	if len(names) > h.opts.MaxSymbols {
		return nil, nil, tooMany(len(names), h.opts.MaxSymbols)
	}
	return h.lookup(ctx, names)
}

func (h *Hub) lookup(ctx context.Context, names []quotehub.Name) (accepted []string, rejected []Rejection, err error) {
	for _, n := range names {
		if n.Err != nil {
			rejected = append(rejected, NewRejection(n.Symbol, n.Err))
			continue
		}
		_, ok, err := h.opts.Catalog.Lookup(ctx, n.Symbol)
		switch {
		case err != nil:
			h.opts.Logger.Error().Err(err).Str("symbol", n.Symbol).Msg("catalogue look-up failed")
			rejected = append(rejected, NewRejection(n.Symbol, err))
		case !ok:
			rejected = append(rejected, NewRejection(n.Symbol, quotehub.Errorf(quotehub.EUnknownSymbol, "%s is not in the catalogue", n.Symbol)))
		default:
			accepted = append(accepted, n.Symbol)
		}
	}
	return accepted, rejected, nil
}

func tooMany(n, limit int) *quotehub.Error {
	return quotehub.Errorf(quotehub.ETooManySymbols, "%d symbols requested; at most %d per connection", n, limit)
}

// Subscribe handles a WebSocket subscribe: the whole request is refused
// (returned error, nothing subscribed) when it is empty or would take the
// connection past MaxSymbols; otherwise a subscribed frame is queued, then
// the snapshot of every newly (or re-) subscribed symbol.
// Subscribe, Unsubscribe, HandleFrame and Close must be called from one
// goroutine (the connection's reader).
func (c *Client) Subscribe(ctx context.Context, id json.RawMessage, raw []string) error {
	names := quotehub.NormalizeList(raw)
	if len(names) == 0 {
		return badRequest("no symbols given")
	}
	limit := c.hub.opts.MaxSymbols
	if len(names) > limit {
		return tooMany(len(names), limit)
	}
	c.mu.Lock()
	added := 0
	for _, n := range names {
		if st := c.syms[n.Symbol]; st == nil || !st.subscribed {
			added++
		}
	}
	held := c.nsubs
	c.mu.Unlock()
	if held+added > limit {
		return quotehub.Errorf(quotehub.ETooManySymbols, "subscribing to %d more symbols would hold %d; at most %d per connection", added, held+added, limit)
	}
	accepted, rejected, err := c.hub.lookup(ctx, names)
	if err != nil {
		return err
	}
	c.attach(ctx, accepted, subscribedFrame(id, accepted, rejected, nil), true)
	return nil
}

// Attach subscribes the client to symbols already resolved (see Resolve)
// and queues their snapshots. SSE streams use it directly; it sends no frame.
func (c *Client) Attach(ctx context.Context, symbols []string) { c.attach(ctx, symbols, nil, true) }

// attach subscribes the client to symbols and queues control (the
// subscribed frame, if any) and then their snapshots. The control is
// queued in the same critical section that notes what each symbol holds,
// so the snapshot of a re-subscribed symbol is sent again only if the
// client got that value before the control: a value still waiting in the
// outbox is written after the control and serves as the snapshot, and
// sending the same seq again would repeat it. byName marks the symbols
// as subscribed by name (not only for a followed list: see follow.go).
func (c *Client) attach(ctx context.Context, symbols []string, control []byte, byName bool) {
	states := make([]*symState, 0, len(symbols))
	held := make([]uint64, 0, len(symbols)) // the seq each symbol may re-send
	var fresh []*symState
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if control != nil {
		c.controls = append(c.controls, control)
	}
	for _, sym := range symbols {
		st := c.syms[sym]
		if st == nil {
			st = &symState{c: c, symbol: sym, idx: -1}
			c.syms[sym] = st
		}
		h := st.seq
		if st.pending != nil {
			h = 0 // the queued value goes out after the control: it is the snapshot
		}
		held = append(held, h)
		st.byName = st.byName || byName
		if !st.subscribed {
			st.subscribed = true
			c.nsubs++
			fresh = append(fresh, st)
		}
		states = append(states, st)
	}
	c.wakeLocked() // unlocks
	for _, st := range fresh {
		c.hub.add(st)
	}
	if len(symbols) == 0 {
		return
	}
	quotes, err := c.hub.opts.Cache.GetMany(ctx, symbols)
	if err != nil {
		c.hub.opts.Logger.Warn().Err(err).Msg("snapshot read failed; quotes follow when fetched")
		return
	}
	for i := range quotes {
		q := &quotes[i]
		if q.Symbol == "" {
			continue // no value yet: the first fetch will be pushed
		}
		u := &Update{Symbol: q.Symbol, Seq: q.Seq, FetchedAt: q.FetchedAt, JSON: q.AppendJSON(nil), Snapshot: true}
		// The snapshot may repeat the seq the client held before this
		// subscribe (a re-subscribe re-sends it), never one delivered since.
		if c.offer(states[i], u, held[i]) {
			c.wakeWriter()
		}
	}
}

// Unsubscribe handles a WebSocket unsubscribe. Names not subscribed, and
// malformed names, are not errors; the reply lists every name the request
// gave (normalised, malformed ones as sent).
func (c *Client) Unsubscribe(id json.RawMessage, raw []string) error {
	names := quotehub.NormalizeList(raw)
	if len(names) == 0 {
		return badRequest("no symbols given")
	}
	echo := make([]string, len(names))
	c.fmu.Lock() // a symbol a followed list holds stays subscribed
	defer c.fmu.Unlock()
	for i, n := range names {
		echo[i] = n.Symbol
		if n.Err != nil {
			continue
		}
		c.release(n.Symbol, func(st *symState) bool {
			st.byName = false // the by-name hold goes; a followed list's stays
			return c.heldByList(n.Symbol)
		})
		c.dropCandles(n.Symbol, nil) // candle streams go with the by-name subscription
	}
	c.SendControl(unsubscribedFrame(id, echo, nil))
	return nil
}

// HandleFrame handles one WebSocket message from the client: rate limit,
// decode, dispatch, and an error frame for anything wrong. After more than
// MaxErrors error frames within ErrorWindow the last one is sent and the
// connection closed with 1008.
func (c *Client) HandleFrame(ctx context.Context, data []byte, binary bool) {
	if !c.allow() {
		c.SendError(nil, quotehub.Errorf(quotehub.ERateLimited, "more than %g requests per second; slow down", c.hub.opts.OpsPerSecond))
		return
	}
	if binary {
		c.SendError(nil, badRequest("binary frames are not supported: send JSON text frames"))
		return
	}
	if !utf8.Valid(data) { // RFC 6455, section 8.1: fail the connection with 1007
		c.closeAfterFlush(&CloseError{Code: CloseInvalidData, Reason: "text frame is not valid UTF-8"})
		return
	}
	req, err := DecodeRequest(data)
	if err == nil {
		switch req.Op {
		case OpSubscribe:
			if req.Candles != nil {
				err = c.SubscribeCandles(ctx, req.ID, req.Symbols, req.Candles)
			} else {
				err = c.Subscribe(ctx, req.ID, req.Symbols)
			}
		case OpUnsubscribe:
			if req.Candles != nil {
				err = c.unsubscribeCandles(req.ID, req.Symbols, req.Candles)
			} else {
				err = c.Unsubscribe(req.ID, req.Symbols)
			}
		case OpFollow:
			err = c.Follow(ctx, req.ID, req.Lists)
		case OpUnfollow:
			err = c.Unfollow(req.ID, req.Lists)
		case OpPing:
			c.SendControl(pongFrame(req.ID, c.hub.opts.Now().UnixMilli()))
		}
	}
	if err != nil {
		c.SendError(req.ID, err)
	}
}

// SendError queues an error frame and enforces the error-rate close.
func (c *Client) SendError(id json.RawMessage, err error) {
	c.SendControl(ErrorFrame(id, err))
	now := c.hub.opts.Now()
	cut := now.Add(-c.hub.opts.ErrorWindow)
	kept := c.errTimes[:0]
	for _, t := range c.errTimes {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	c.errTimes = append(kept, now)
	if len(c.errTimes) > c.hub.opts.MaxErrors {
		c.closeAfterFlush(&CloseError{Code: ClosePolicy, Reason: fmt.Sprintf("more than %d errors in %s", c.hub.opts.MaxErrors, c.hub.opts.ErrorWindow)})
	}
}

// allow takes one token of the connection's request budget.
func (c *Client) allow() bool {
	now := c.hub.opts.Now()
	o := &c.hub.opts
	c.tokens = min(float64(o.OpsBurst), c.tokens+now.Sub(c.tokensAt).Seconds()*o.OpsPerSecond)
	c.tokensAt = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}
