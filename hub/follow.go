package hub

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"quotehub"
)

// Following a user's lists: a signed-in session names lists ("portfolio",
// "watchlist:ID") instead of symbols, is subscribed to every symbol they
// hold, and tracks them as the user edits them, on any node. What the
// lists hold comes from Options.Lists, which the application implements
// over its user store; the hub keeps, per session, which lists it
// follows and how many of them hold each symbol, apart from the symbols
// the session subscribed to by name, which a list never drops.

// List is what one followed list holds.
type List struct {
	// Symbols are subscribed to while the list is followed.
	Symbols []string
	// Version orders the reads of one list: an older read than the one
	// applied (two edits in quick succession) is ignored.
	Version int64
	// Value, when set (a portfolio), returns the frame that values the
	// list at quote, each symbol's latest quote (false: none yet). It is
	// called at most once per session per batch of quotes that changed
	// one of Symbols, with the session's own copies: no store or cache
	// round trip.
	Value func(quote func(symbol string) (quotehub.Quote, bool)) []byte
}

// Lists reads users' lists for the sessions that follow them.
type Lists interface {
	// List returns what the user's list name holds: a *quotehub.Error
	// with ENotFound for a list that is not the user's (or does not
	// exist), EBadRequest for a name that cannot be one.
	List(ctx context.Context, user, name string) (List, error)
}

// MaxFollow is the most lists one follow request may name.
const MaxFollow = 16

// OpFollow and OpUnfollow follow and stop following lists.
const (
	OpFollow   = "follow"
	OpUnfollow = "unfollow"
)

// follows is a session's followed lists; guarded by Client.fmu.
type follows struct {
	lists map[string]*followed // by list name
	count map[string]int       // symbol → followed lists that hold it
}

type followed struct {
	version int64
	symbols []string
}

// folio is the valuation state of a session that follows a portfolio:
// its latest quote of every symbol the valuation reads, by position
// (index is fixed once the folio is built, so a look-up takes no lock).
type folio struct {
	value func(func(string) (quotehub.Quote, bool)) []byte
	index map[string]int // symbol → position in quotes; read-only

	mu     sync.Mutex
	quotes []quotehub.Quote // Symbol "" until quoted

	vmu     sync.Mutex       // one valuation at a time (the writer's)
	scratch []quotehub.Quote // the copy a valuation reads
}

func newFolio(value func(func(string) (quotehub.Quote, bool)) []byte, symbols []string) *folio {
	f := &folio{value: value, index: make(map[string]int, len(symbols))}
	for _, s := range symbols {
		if _, ok := f.index[s]; !ok {
			f.index[s] = len(f.quotes)
			f.quotes = append(f.quotes, quotehub.Quote{})
		}
	}
	f.scratch = make([]quotehub.Quote, len(f.quotes))
	return f
}

// frame values the portfolio at the quotes held. It values a copy, so
// that Publish, which updates the quotes, never waits for a valuation.
func (f *folio) frame() []byte {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	f.mu.Lock()
	copy(f.scratch, f.quotes)
	f.mu.Unlock()
	return f.value(func(s string) (quotehub.Quote, bool) {
		i, ok := f.index[s]
		if !ok {
			return quotehub.Quote{}, false
		}
		q := &f.scratch[i]
		return *q, q.Symbol != ""
	})
}

// note records q if the portfolio values its symbol; it reports whether
// it did (a valuation is then due).
func (f *folio) note(q *quotehub.Quote) bool {
	i, ok := f.index[q.Symbol]
	if !ok {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := &f.quotes[i]; old.Symbol != "" && q.Seq <= old.Seq {
		return false
	}
	f.quotes[i] = *q
	return true
}

// noteValued records a published quote for the session's valuation and
// marks a valuation due; like offer, it reports whether the caller must
// wake the writer.
func (c *Client) noteValued(q *quotehub.Quote) (mustWake bool) {
	f := c.folio.Load()
	if f == nil || !f.note(q) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.folioDue = true
	if c.w.wakePending || c.w.running {
		return false
	}
	c.w.wakePending = true
	return true
}

// takeValuation returns the valuation frame due, if any, for the writer.
// due was read (and cleared) under c.mu by drain.
func (c *Client) takeValuation(due bool) []byte {
	if !due {
		return nil
	}
	f := c.folio.Load()
	if f == nil {
		return nil
	}
	return c.event("portfolio", f.frame())
}

// event frames a control frame for the client's transport: as it is on
// a WebSocket, as an SSE event of that type on an SSE stream.
func (c *Client) event(typ string, frame []byte) []byte {
	if c.transport == "ws" {
		return frame
	}
	b := make([]byte, 0, len(frame)+len(typ)+16)
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, frame...)
	return append(b, '\n', '\n')
}

// Follow handles a follow: the session must act for a user; every list is
// read (an error refuses the whole request, nothing changed), then the
// session is subscribed to their symbols, a subscribed frame naming the
// lists and every symbol they hold is queued, and the snapshots of newly
// subscribed symbols. Following a list already followed re-reads it.
func (c *Client) Follow(ctx context.Context, id json.RawMessage, names []string) error {
	p, ok := c.User()
	if !ok {
		return quotehub.Errorf(quotehub.EUnauthorized, "following lists needs a signed-in session: open it with a token")
	}
	lists := c.hub.opts.Lists
	if lists == nil {
		return quotehub.Errorf(quotehub.EUnavailable, "this node keeps no user data")
	}
	names = dedupe(names)
	switch {
	case len(names) == 0:
		return badRequest("no lists given")
	case len(names) > MaxFollow:
		return badRequest("at most 16 lists per follow")
	}
	// The lists are read with fmu held: a re-read that an edit or a
	// deletion asks for meanwhile (Refollow) waits for this follow to take
	// effect and then reads again, instead of finding the list not yet
	// followed and leaving the session with what this read saw.
	c.fmu.Lock()
	defer c.fmu.Unlock()
	read := make([]List, len(names))
	for i, n := range names {
		l, err := lists.List(ctx, p.UserID, n)
		if err != nil {
			return err
		}
		read[i] = l
	}
	// Refuse the whole request if it would take the session past its limit.
	fresh := map[string]bool{}
	c.mu.Lock()
	for _, l := range read {
		for _, s := range l.Symbols {
			if st := c.syms[s]; st == nil || !st.subscribed {
				fresh[s] = true
			}
		}
	}
	held := c.nsubs
	c.mu.Unlock()
	if limit := c.hub.opts.MaxSymbols; held+len(fresh) > limit {
		return quotehub.Errorf(quotehub.ETooManySymbols, "following these lists would hold %d symbols; at most %d per connection", held+len(fresh), limit)
	}
	var all, added []string
	for i, n := range names {
		a, _, _ := c.applyLocked(ctx, n, read[i], true)
		added = append(added, a...)
		all = append(all, read[i].Symbols...)
	}
	c.attach(ctx, added, c.event("subscribed", listFrame("subscribed", id, names, "", dedupe(all), nil)), false)
	c.valueNow()
	return nil
}

// Unfollow stops following lists: the symbols only they held are dropped,
// and an unsubscribed frame lists them. Lists not followed are no error.
func (c *Client) Unfollow(id json.RawMessage, names []string) error {
	names = dedupe(names)
	if len(names) == 0 {
		return badRequest("no lists given")
	}
	c.fmu.Lock()
	defer c.fmu.Unlock()
	var dropped []string
	for _, n := range names {
		dropped = append(dropped, c.dropListLocked(n)...)
	}
	c.SendControl(c.event("unsubscribed", listFrame("unsubscribed", id, names, "", dropped, nil)))
	return nil
}

// Following returns the lists the session follows, sorted.
func (c *Client) Following() []string {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.fol == nil {
		return nil
	}
	out := make([]string, 0, len(c.fol.lists))
	for n := range c.fol.lists {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// applyLocked makes the session follow list name as l holds it: symbols
// new to it are counted (and returned in added when no other hold had them
// subscribed: the caller attaches them), symbols it lost are uncounted and
// dropped when nothing else holds them. A read older than the one applied
// changes nothing. Past the symbol limit, the symbols that do not fit are
// returned as rejected (only for a re-read: Follow checked before).
// c.fmu is held.
func (c *Client) applyLocked(ctx context.Context, name string, l List, initial bool) (added []string, dropped []string, rejected []Rejection) {
	if c.fol == nil {
		c.fol = &follows{lists: map[string]*followed{}, count: map[string]int{}}
	}
	old := c.fol.lists[name]
	if old != nil && l.Version < old.version {
		return nil, nil, nil
	}
	var before []string
	if old != nil {
		before = old.symbols
	}
	now := dedupe(l.Symbols)
	in := func(set []string, s string) bool { return slices.Contains(set, s) }
	c.mu.Lock()
	room := c.hub.opts.MaxSymbols - c.nsubs
	c.mu.Unlock()
	var kept []string
	for _, s := range now {
		if in(before, s) {
			kept = append(kept, s)
			continue
		}
		if c.fol.count[s] == 0 && !c.subscribedTo(s) {
			if room <= 0 && !initial {
				rejected = append(rejected, NewRejection(s, quotehub.Errorf(quotehub.ETooManySymbols, "the session holds %d symbols already", c.hub.opts.MaxSymbols)))
				continue
			}
			room--
			added = append(added, s)
		}
		c.fol.count[s]++
		kept = append(kept, s)
	}
	for _, s := range before {
		if !in(kept, s) {
			if c.uncountLocked(s) {
				dropped = append(dropped, s)
			}
		}
	}
	c.fol.lists[name] = &followed{version: l.Version, symbols: kept}
	if l.Value != nil {
		c.setFolio(ctx, l, kept)
	}
	return added, dropped, rejected
}

// dropListLocked stops following name and returns the symbols dropped.
// c.fmu is held.
func (c *Client) dropListLocked(name string) (dropped []string) {
	if c.fol == nil || c.fol.lists[name] == nil {
		return nil
	}
	for _, s := range c.fol.lists[name].symbols {
		if c.uncountLocked(s) {
			dropped = append(dropped, s)
		}
	}
	delete(c.fol.lists, name)
	if name == PortfolioList {
		c.folio.Store(nil)
	}
	return dropped
}

// PortfolioList is the name of a user's portfolio as a followed list.
const PortfolioList = "portfolio"

// uncountLocked takes one list's hold off s and unsubscribes it when no
// list holds it and it was not subscribed by name; it reports whether it
// did. c.fmu is held.
func (c *Client) uncountLocked(s string) bool {
	c.fol.count[s]--
	if c.fol.count[s] > 0 {
		return false
	}
	delete(c.fol.count, s)
	return c.release(s, func(st *symState) bool { return st.byName })
}

// release unsubscribes sym unless held, called under c.mu, says that
// something else still holds it; it reports whether it did.
func (c *Client) release(sym string, held func(*symState) bool) bool {
	c.mu.Lock()
	st := c.syms[sym]
	drop := st != nil && st.subscribed && !held(st)
	if drop {
		st.subscribed = false
		st.pending = nil
		c.nsubs--
	}
	c.mu.Unlock()
	if drop {
		c.hub.remove(st)
	}
	return drop
}

// heldByList reports whether a followed list holds s. c.fmu is held.
func (c *Client) heldByList(s string) bool {
	return c.fol != nil && c.fol.count[s] > 0
}

func (c *Client) subscribedTo(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.syms[s]
	return st != nil && st.subscribed
}

// setFolio (re)starts the session's valuation of a portfolio: its quotes
// are read from the cache once, then kept current by Publish. The
// caller then calls valueNow.
func (c *Client) setFolio(ctx context.Context, l List, symbols []string) {
	f := newFolio(l.Value, symbols)
	if qs, err := c.hub.opts.Cache.GetMany(ctx, symbols); err == nil {
		for _, q := range qs {
			if i, ok := f.index[q.Symbol]; ok && q.Symbol != "" {
				f.quotes[i] = q
			}
		}
	}
	c.folio.Store(f)
}

// valueNow makes a valuation due, after the frames that announce what
// the session follows.
func (c *Client) valueNow() {
	if c.folio.Load() == nil {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.folioDue = true
	c.wakeLocked()
}

// Refollow re-reads list of user (every list, for "") for the user's
// sessions on this node that follow it, and applies what it holds now:
// each session adds and drops symbols, with subscribed and unsubscribed
// frames naming the list. A list that is gone (ENotFound) is no longer
// followed. Each list is read once for all the sessions. It blocks on
// the store: call it off the bus's delivery goroutine.
func (h *Hub) Refollow(ctx context.Context, user, list string) {
	if h.opts.Lists == nil {
		return
	}
	var clients []*Client
	h.ForUser(user, func(c *Client) { clients = append(clients, c) })
	type read struct {
		l   List
		err error
	}
	reads := map[string]read{}
	for _, c := range clients {
		for _, name := range c.Following() {
			if list != "" && name != list {
				continue
			}
			r, ok := reads[name]
			if !ok {
				l, err := h.opts.Lists.List(ctx, user, name)
				r = read{l, err}
				reads[name] = r
			}
			switch {
			case quotehub.ErrorCode(r.err) == quotehub.ENotFound:
				c.refollowGone(name)
			case r.err != nil:
				h.opts.Logger.Warn().Err(r.err).Str("list", name).Msg("re-reading a followed list failed; the session keeps what it had")
			default:
				c.refollow(ctx, name, r.l)
			}
		}
	}
}

// refollow applies a re-read of a followed list.
func (c *Client) refollow(ctx context.Context, name string, l List) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.fol == nil || c.fol.lists[name] == nil {
		return // unfollowed meanwhile
	}
	added, dropped, rejected := c.applyLocked(ctx, name, l, false)
	if len(added) > 0 || len(rejected) > 0 {
		c.attach(ctx, added, c.event("subscribed", listFrame("subscribed", nil, nil, name, added, rejected)), false)
	}
	if len(dropped) > 0 {
		c.SendControl(c.event("unsubscribed", listFrame("unsubscribed", nil, nil, name, dropped, nil)))
	}
	if l.Value != nil {
		c.valueNow()
	}
}

// refollowGone stops following a list that no longer exists.
func (c *Client) refollowGone(name string) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.fol == nil || c.fol.lists[name] == nil {
		return
	}
	dropped := c.dropListLocked(name)
	c.SendControl(c.event("unsubscribed", listFrame("unsubscribed", nil, nil, name, dropped, nil)))
}

// listFrame is a subscribed or unsubscribed frame of following: the
// reply to a follow or unfollow (id, lists), or a change of one followed
// list (list).
func listFrame(typ string, id json.RawMessage, lists []string, list string, symbols []string, rejected []Rejection) []byte {
	if symbols == nil {
		symbols = []string{}
	}
	f := struct {
		Type     string          `json:"type"`
		ID       json.RawMessage `json:"id,omitempty"`
		Lists    []string        `json:"lists,omitempty"`
		List     string          `json:"list,omitempty"`
		Symbols  []string        `json:"symbols"`
		Rejected *[]Rejection    `json:"rejected,omitempty"`
	}{Type: typ, ID: id, Lists: lists, List: list, Symbols: symbols}
	if typ == "subscribed" {
		if rejected == nil {
			rejected = []Rejection{}
		}
		f.Rejected = &rejected
	}
	return mustMarshal(f)
}

// dedupe returns names without repeats or empty names, in order.
func dedupe(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
