package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"quotehub"
)

// Candle subscriptions. A session that subscribes to symbols with
// intervals holds, besides each symbol's quote subscription, one candle
// stream per (symbol, interval). The hub keeps a registry of the series
// its sessions watch and, on a goroutine of its own (the pump), turns the
// quotes Publish delivers into candle updates: after a batch that holds
// a watched symbol, the pump asks the CandleSource for the current candle
// of each of its watched series and offers it to their streams, encoded
// once. When a period ends (a quote of a later period, or the clock
// passing its end) the pump first offers the period's final candle
// (closed), then the new one.
//
// A stream's outbox entry is conflated like a quote's (the newest
// candle replaces an undelivered older one of the same period) with one
// exception: a closed candle is never replaced by a candle of a later
// period. When one is still undelivered at the roll, it is detached from
// the stream into an entry of its own that keeps its place in the
// outbox, and the new candle queues behind it. A slow reader therefore
// gets every final candle, then the newest open one.
//
// With no candle stream on the node, the quote path pays one atomic load
// per published batch.

// CandleValue is a candle with what the candle frame says about it.
type CandleValue struct {
	quotehub.Candle
	// Seq and FetchedAt are those of the newest quote folded into the
	// candle (0 when none was, the candle being the upstream's alone).
	Seq       uint64
	FetchedAt int64
	// End is when the candle's period ends.
	End time.Time
}

// CandleSource gives the hub the candles of the series its sessions
// watch (the application's history service).
type CandleSource interface {
	// Check reports whether symbol has candles: nil, or the error a
	// subscribe gets for it as a rejection (not_found for a symbol whose
	// upstream has none).
	Check(ctx context.Context, symbol string) error
	// Current returns the candle of s open now, exactly as a read
	// returns its newest candle; ok is false when no period is open.
	Current(ctx context.Context, s quotehub.CandleSeries) (c CandleValue, ok bool)
	// Final returns the final candle of the period of s that starts at t
	// (Unix ms), closed, once that period has ended; ok is false when the
	// source does not know it (the hub then closes the last candle it
	// sent of the period).
	Final(ctx context.Context, s quotehub.CandleSeries, t int64) (c CandleValue, ok bool)
}

// candleState is one session's stream of one series. Its symState is
// what the outbox holds (c.order); the rest is guarded by the client's
// mu, except idx, which the candle registry's mu guards.
type candleState struct {
	symState
	series quotehub.CandleSeries
	t      int64 // the period of the newest candle offered (pending, if any, is that candle)
	closed bool  // whether that candle was the period's final one
	idx    int   // in its series' subscriber list
}

// candleHub is the registry of watched series and their pump.
type candleHub struct {
	h      *Hub
	src    CandleSource
	active atomic.Int64 // watched series; Publish looks at nothing else while it is 0
	wake   chan struct{}

	mu     sync.Mutex
	series map[quotehub.CandleSeries]*watched
	bySym  map[string][]*watched
	dirty  map[string]struct{} // symbols with quotes the pump has not looked at
}

// watched is one series some session on this node subscribes to.
type watched struct {
	s    quotehub.CandleSeries
	subs []*candleState // guarded by candleHub.mu
	// ver numbers the candles published to the series' streams (guarded
	// by candleHub.mu): the order of their outbox entries, since the seq
	// of the newest quote folded in stays the same when the source's view
	// of the period changes without a quote.
	ver uint64
	// The newest candle published (guarded by candleHub.mu).
	last CandleValue
	has  bool
	mark uint64 // the pump round that listed it
}

func newCandleHub(h *Hub, src CandleSource) *candleHub {
	return &candleHub{h: h, src: src, wake: make(chan struct{}, 1),
		series: make(map[quotehub.CandleSeries]*watched), bySym: make(map[string][]*watched), dirty: make(map[string]struct{})}
}

// candlesChanged tells the pump that quotes of these symbols were
// published. It is called by Publish only while some series is watched.
func (ch *candleHub) changed(quotes []quotehub.Quote) {
	any := false
	ch.mu.Lock()
	for i := range quotes {
		if _, ok := ch.bySym[quotes[i].Symbol]; ok {
			ch.dirty[quotes[i].Symbol] = struct{}{}
			any = true
		}
	}
	ch.mu.Unlock()
	if any {
		ch.poke()
	}
}

// CandlesChanged tells the hub that the candles of symbol changed other
// than by a quote Publish delivered (the source's view of the open period
// was fetched again): its watched series are computed again.
func (h *Hub) CandlesChanged(symbol string) {
	ch := h.candles
	if ch == nil || ch.active.Load() == 0 {
		return
	}
	ch.mu.Lock()
	_, ok := ch.bySym[symbol]
	if ok {
		ch.dirty[symbol] = struct{}{}
	}
	ch.mu.Unlock()
	if ok {
		ch.poke()
	}
}

func (ch *candleHub) poke() {
	select {
	case ch.wake <- struct{}{}:
	default:
	}
}

// add registers a session's stream.
func (ch *candleHub) add(cs *candleState) {
	ch.mu.Lock()
	w := ch.series[cs.series]
	if w == nil {
		w = &watched{s: cs.series}
		ch.series[cs.series] = w
		ch.bySym[cs.series.Symbol] = append(ch.bySym[cs.series.Symbol], w)
		ch.active.Add(1)
	}
	cs.idx = len(w.subs)
	w.subs = append(w.subs, cs)
	ch.mu.Unlock()
}

// remove unregisters a session's stream (swap with the last).
func (ch *candleHub) remove(cs *candleState) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	w := ch.series[cs.series]
	if w == nil || cs.idx < 0 || cs.idx >= len(w.subs) || w.subs[cs.idx] != cs {
		return
	}
	last := len(w.subs) - 1
	moved := w.subs[last]
	w.subs[cs.idx] = moved
	moved.idx = cs.idx
	w.subs[last] = nil
	w.subs = w.subs[:last]
	cs.idx = -1
	if last > 0 {
		return
	}
	delete(ch.series, cs.series)
	sym := cs.series.Symbol
	ws := slices.DeleteFunc(ch.bySym[sym], func(x *watched) bool { return x == w })
	if len(ws) == 0 {
		delete(ch.bySym, sym)
		delete(ch.dirty, sym)
	} else {
		ch.bySym[sym] = ws
	}
	ch.active.Add(-1)
}

// run is the pump: a round whenever quotes of a watched symbol came, and
// at the end of the earliest open period of a watched series.
func (ch *candleHub) run() {
	defer ch.h.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var round uint64
	for {
		select {
		case <-ch.h.done:
			timer.Stop()
			return
		case <-ch.wake:
		case <-timer.C:
		}
		round++
		if next, ok := ch.round(round); ok {
			timer.Reset(max(next.Sub(ch.h.opts.Now()), time.Millisecond))
		} else {
			timer.Stop()
		}
	}
}

// pumpTimeout bounds one candle computation (the source may ask the
// upstream for its view of a new period, once per period).
const pumpTimeout = 5 * time.Second

// round recomputes the series whose symbol had quotes and those whose
// period has ended, publishes what changed, and returns the end of the
// earliest period still open.
func (ch *candleHub) round(round uint64) (next time.Time, ok bool) {
	now := ch.h.opts.Now()
	var todo []*watched
	ch.mu.Lock()
	for sym := range ch.dirty {
		for _, w := range ch.bySym[sym] {
			w.mark = round
			todo = append(todo, w)
		}
	}
	clear(ch.dirty)
	for _, w := range ch.series {
		if w.mark != round && w.has && !w.last.Closed && !now.Before(w.last.End) {
			w.mark = round
			todo = append(todo, w)
		}
	}
	ch.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), pumpTimeout)
	defer cancel()
	var evs []candleEvent
	for _, w := range todo {
		evs = ch.step(ctx, w, now, evs)
	}
	if len(evs) > 0 {
		ch.publish(evs)
	}

	ch.mu.Lock()
	for _, w := range ch.series {
		if w.has && !w.last.Closed && (!ok || w.last.End.Before(next)) {
			next, ok = w.last.End, true
		}
	}
	ch.mu.Unlock()
	return next, ok
}

// candleEvent is one candle to publish to a series' streams.
type candleEvent struct {
	w *watched
	u *Update
	v CandleValue
}

// step computes what changed in w: the final candle of a period that
// ended, then the current candle if it is new.
func (ch *candleHub) step(ctx context.Context, w *watched, now time.Time, evs []candleEvent) []candleEvent {
	cur, ok := ch.src.Current(ctx, w.s)
	ch.mu.Lock()
	last, has := w.last, w.has
	ch.mu.Unlock()
	if has && !last.Closed && (ok && cur.T > last.T || !now.Before(last.End)) {
		fin, fok := ch.src.Final(ctx, w.s, last.T)
		if !fok || fin.T != last.T {
			fin = last
		}
		fin.Closed = true
		last = fin
		evs = append(evs, candleEvent{w: w, u: candleUpdate(w.s, fin, false), v: fin})
	}
	if ok && (!has || cur.T > last.T || cur.T == last.T && !last.Closed && (cur.Seq != last.Seq || cur.Candle != last.Candle)) {
		last, has = cur, true
		evs = append(evs, candleEvent{w: w, u: candleUpdate(w.s, cur, false), v: cur})
	}
	ch.mu.Lock()
	w.last, w.has = last, has
	ch.mu.Unlock()
	return evs
}

// snapshot returns the current candle of s for a new stream, and the
// version to offer it with: the one the pump published last, or, for a
// series it has published nothing of, the source's, which the pump then
// takes as what it published (it publishes only what differs from it).
func (ch *candleHub) snapshot(ctx context.Context, s quotehub.CandleSeries) (CandleValue, uint64, bool) {
	ch.mu.Lock()
	w := ch.series[s]
	if w != nil && w.has && !w.last.Closed {
		defer ch.mu.Unlock()
		return w.last, w.ver, true
	}
	ch.mu.Unlock()
	v, ok := ch.src.Current(ctx, s)
	if !ok {
		return v, 0, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if w == nil || ch.series[s] != w {
		return v, 0, true
	}
	if w.has && w.last.T >= v.T {
		// The pump published this period (or a later one) while the
		// source was asked: its candle is as new as v or newer, and v
		// may lack the seq of the quotes folded into it since.
		return w.last, w.ver, true
	}
	w.last, w.has = v, true
	return v, w.ver, true
}

// publish offers events to their streams, then wakes the writers.
func (ch *candleHub) publish(evs []candleEvent) {
	wp := wakePool.Get().(*[]*Client)
	wake := (*wp)[:0]
	ch.mu.Lock()
	for _, ev := range evs {
		ev.w.ver++
		ev.u.Seq = ev.w.ver
		for _, cs := range ev.w.subs {
			if cs.c.offerCandle(cs, ev.u, ev.v.T, ev.v.Closed, false) {
				wake = append(wake, cs.c)
			}
		}
	}
	ch.mu.Unlock()
	wakeAll(wp, wake)
}

// candleUpdate encodes a candle once for every stream of s. Its Seq is
// set by the caller: the series' version (see watched.ver).
func candleUpdate(s quotehub.CandleSeries, v CandleValue, snapshot bool) *Update {
	b := make([]byte, 0, 192)
	b = append(b, `{"symbol":`...)
	b = quotehub.AppendJSONString(b, s.Symbol)
	b = append(b, `,"interval":"`...)
	b = append(b, s.Interval.String()...)
	b = append(b, `",`...)
	start := len(b)
	b = v.Candle.AppendJSON(b) // the candle's fields, without its braces
	copy(b[start:], b[start+1:])
	b = b[:len(b)-2]
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, v.Seq, 10)
	b = append(b, `,"fetched_at":`...)
	b = strconv.AppendInt(b, v.FetchedAt, 10)
	b = append(b, '}')
	return &Update{Symbol: s.Symbol, Interval: s.Interval, FetchedAt: v.FetchedAt, JSON: b, Snapshot: snapshot}
}

// offerCandle queues u, a candle of period t (closed: its final one), on
// the stream cs unless the stream has had a newer candle: an earlier
// period, the open candle of a period already closed, or an older version
// (u.Seq) of the same one. A snapshot may repeat the newest version. Like
// offer, it reports whether the caller must wake the writer.
func (c *Client) offerCandle(cs *candleState, u *Update, t int64, closed, snapshot bool) (mustWake bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !cs.subscribed {
		return false
	}
	if t < cs.t || t == cs.t && cs.closed && !closed {
		return false
	}
	if t == cs.t && closed == cs.closed && (u.Seq < cs.seq || u.Seq == cs.seq && !snapshot) {
		return false
	}
	if cs.pending != nil {
		if cs.closed && t > cs.t {
			c.detachFinalLocked(cs)
		} else {
			c.conflated++
		}
	}
	cs.pending = u
	cs.t, cs.closed, cs.seq = t, closed, u.Seq
	if !cs.queued {
		cs.queued = true
		c.order = append(c.order, &cs.symState)
	}
	if c.w.wakePending || c.w.running {
		return false
	}
	c.w.wakePending = true
	return true
}

// detachFinalLocked moves the undelivered final candle of cs into an
// outbox entry of its own, in cs's place, so that what cs queues next
// goes out after it and does not replace it. c.mu is held.
func (c *Client) detachFinalLocked(cs *candleState) {
	fin := &symState{c: c, symbol: cs.symbol, idx: -1, subscribed: true, queued: true, pending: cs.pending}
	for i, st := range c.order {
		if st == &cs.symState {
			c.order[i] = fin
			break
		}
	}
	cs.pending, cs.queued = nil, false
}

// ParseIntervals reads the intervals of a candle subscription, in their
// wire form, de-duplicated, shortest first. An unknown one is a
// bad_request error naming it; an empty list is one too.
func ParseIntervals(raw []string) ([]quotehub.Interval, error) {
	if len(raw) == 0 {
		return nil, badRequest(`"candles" is empty: name intervals such as "1m", "1d"`)
	}
	var ivs []quotehub.Interval
	for _, s := range raw {
		iv, err := quotehub.ParseInterval(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ivs, iv) {
			ivs = append(ivs, iv)
		}
	}
	slices.Sort(ivs)
	return ivs, nil
}

func intervalNames(ivs []quotehub.Interval) []string {
	out := make([]string, len(ivs))
	for i, iv := range ivs {
		out[i] = iv.String()
	}
	return out
}

// errNoCandles answers a candle subscription on a node without candles.
func errNoCandles() *quotehub.Error {
	return quotehub.Errorf(quotehub.ENotFound, "this node serves no candles")
}

// CandlesServed reports whether the hub has a CandleSource.
func (h *Hub) CandlesServed() bool { return h.candles != nil }

// CheckCandleLimit refuses, before any look-up, a request of n symbols
// with intervals ivs that would take a connection holding held candle
// streams past MaxCandleStreams. SSE streams call it with held 0.
func (h *Hub) CheckCandleLimit(held, n int, ivs []quotehub.Interval) error {
	if h.candles == nil {
		return errNoCandles()
	}
	limit := h.opts.MaxCandleStreams
	if add := n * len(ivs); held+add > limit {
		return quotehub.Errorf(quotehub.ETooManySymbols, "%d symbols × %d intervals would hold %d candle streams; at most %d per connection", n, len(ivs), held+add, limit)
	}
	return nil
}

// CheckCandles splits symbols (accepted by Resolve) into those that have
// candles and the rejections of those that do not.
func (h *Hub) CheckCandles(ctx context.Context, symbols []string) (ok []string, rejected []Rejection) {
	ok = symbols[:0:0]
	for _, s := range symbols {
		if err := h.candles.src.Check(ctx, s); err != nil {
			rejected = append(rejected, NewRejection(s, err))
			continue
		}
		ok = append(ok, s)
	}
	return ok, rejected
}

// SubscribeCandles handles a WebSocket subscribe that names intervals:
// the quote subscription of Subscribe, refused and limited the same way,
// plus a candle stream per (symbol, interval). Symbols without candles
// are rejected. The reply is one subscribed frame naming the intervals;
// then come the quote snapshots, then the current candle of each stream.
func (c *Client) SubscribeCandles(ctx context.Context, id json.RawMessage, raw []string, ivs []quotehub.Interval) error {
	h := c.hub
	if h.candles == nil {
		return errNoCandles()
	}
	names := quotehub.NormalizeList(raw)
	if len(names) == 0 {
		return badRequest("no symbols given")
	}
	limit := h.opts.MaxSymbols
	if len(names) > limit {
		return tooMany(len(names), limit)
	}
	c.mu.Lock()
	added, newStreams := 0, 0
	for _, n := range names {
		if st := c.syms[n.Symbol]; st == nil || !st.subscribed {
			added++
		}
		for _, iv := range ivs {
			if c.cands[quotehub.CandleSeries{Symbol: n.Symbol, Interval: iv}] == nil {
				newStreams++
			}
		}
	}
	held, heldStreams := c.nsubs, len(c.cands)
	c.mu.Unlock()
	if held+added > limit {
		return quotehub.Errorf(quotehub.ETooManySymbols, "subscribing to %d more symbols would hold %d; at most %d per connection", added, held+added, limit)
	}
	if heldStreams+newStreams > h.opts.MaxCandleStreams {
		return quotehub.Errorf(quotehub.ETooManySymbols, "subscribing to %d more candle streams would hold %d; at most %d per connection", newStreams, heldStreams+newStreams, h.opts.MaxCandleStreams)
	}
	accepted, rejected, err := h.lookup(ctx, names)
	if err != nil {
		return err
	}
	accepted, noCandles := h.CheckCandles(ctx, accepted)
	rejected = append(rejected, noCandles...)
	c.attach(ctx, accepted, subscribedFrame(id, accepted, rejected, intervalNames(ivs)), true)
	c.AttachCandles(ctx, accepted, ivs)
	return nil
}

// AttachCandles opens a candle stream per (symbol, interval) for symbols
// already subscribed (see Attach), and queues the current candle of each.
// SSE streams use it directly.
func (c *Client) AttachCandles(ctx context.Context, symbols []string, ivs []quotehub.Interval) {
	ch := c.hub.candles
	if ch == nil || len(symbols) == 0 {
		return
	}
	var fresh, all []*candleState
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.cands == nil {
		c.cands = make(map[quotehub.CandleSeries]*candleState)
	}
	for _, sym := range symbols {
		for _, iv := range ivs {
			s := quotehub.CandleSeries{Symbol: sym, Interval: iv}
			cs := c.cands[s]
			if cs == nil {
				cs = &candleState{symState: symState{c: c, symbol: sym, idx: -1, subscribed: true}, series: s, idx: -1}
				c.cands[s] = cs
				fresh = append(fresh, cs)
			}
			all = append(all, cs)
		}
	}
	c.mu.Unlock()
	for _, cs := range fresh {
		ch.add(cs)
	}
	for _, cs := range all {
		v, ver, ok := ch.snapshot(ctx, cs.series)
		if !ok {
			continue // none open: the first candle of the next period is pushed
		}
		u := candleUpdate(cs.series, v, true)
		u.Seq = ver // what the pump publishes next is newer
		if c.offerCandle(cs, u, v.T, v.Closed, true) {
			c.wakeWriter()
		}
	}
}

// unsubscribeCandles handles a WebSocket unsubscribe that names
// intervals: only those streams go; the quote subscriptions stay.
func (c *Client) unsubscribeCandles(id json.RawMessage, raw []string, ivs []quotehub.Interval) error {
	names := quotehub.NormalizeList(raw)
	if len(names) == 0 {
		return badRequest("no symbols given")
	}
	echo := make([]string, len(names))
	for i, n := range names {
		echo[i] = n.Symbol
		if n.Err == nil {
			c.dropCandles(n.Symbol, ivs)
		}
	}
	c.SendControl(unsubscribedFrame(id, echo, intervalNames(ivs)))
	return nil
}

// dropCandles ends the client's candle streams of sym at ivs (nil: all of
// them), with anything of them still undelivered.
func (c *Client) dropCandles(sym string, ivs []quotehub.Interval) {
	if c.hub.candles == nil {
		return
	}
	var gone []*candleState
	c.mu.Lock()
	for s, cs := range c.cands {
		if s.Symbol == sym && (ivs == nil || slices.Contains(ivs, s.Interval)) {
			gone = append(gone, cs)
			delete(c.cands, s)
		}
	}
	c.endStreamsLocked(gone)
	c.mu.Unlock()
	for _, cs := range gone {
		c.hub.candles.remove(cs)
	}
}

// closeCandles ends every candle stream of a closing client.
func (c *Client) closeCandles() {
	if c.hub.candles == nil {
		return
	}
	c.mu.Lock()
	gone := make([]*candleState, 0, len(c.cands))
	for _, cs := range c.cands {
		gone = append(gone, cs)
	}
	c.cands = nil
	c.endStreamsLocked(gone)
	c.mu.Unlock()
	for _, cs := range gone {
		c.hub.candles.remove(cs)
	}
}

// endStreamsLocked marks streams ended and drops what of them waits in
// the outbox, detached final candles included. c.mu is held.
func (c *Client) endStreamsLocked(gone []*candleState) {
	if len(gone) == 0 {
		return
	}
	for _, cs := range gone {
		cs.subscribed = false
		cs.pending = nil
	}
	for _, st := range c.order {
		if u := st.pending; u != nil && u.Interval != 0 && slices.ContainsFunc(gone, func(cs *candleState) bool {
			return cs.series.Symbol == u.Symbol && cs.series.Interval == u.Interval
		}) {
			st.pending = nil
		}
	}
}

// CandleStreams returns how many candle streams the client holds.
func (c *Client) CandleStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cands)
}

// WatchedSeries returns how many series have candle streams on this node.
func (h *Hub) WatchedSeries() int {
	if h.candles == nil {
		return 0
	}
	return int(h.candles.active.Load())
}
