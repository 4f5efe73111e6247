package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// A user's fired alerts reach their live sessions two ways: WebSocket
// sessions get an "alert" frame, and the per-user SSE stream
// GET /v1/me/events gets an "alert" event whose id is the alert's id in
// the user's fired log. A stream opened with Last-Event-ID (or
// ?last_event_id=) first replays what the log holds after that id, at
// most ReplayLimit alerts, then continues live, without sending any id
// twice.

// ReplayLimit is the most alerts a reconnecting stream is replayed: the
// newest ones after its Last-Event-ID. Older ones stay readable with
// GET /v1/me/alerts/fired while the store's window keeps them.
const ReplayLimit = 100

// alertFrame is an alert on the wire: the WebSocket frame, and the data of
// the SSE event (without "type"). ID is absent for an alert that could not
// be recorded (the user store was unreachable): it is delivered live once
// and is never replayed.
type alertFrame struct {
	Type      string  `json:"type,omitempty"`
	ID        int64   `json:"id,omitempty"`
	RuleID    int64   `json:"rule_id"`
	Symbol    string  `json:"symbol"`
	Kind      string  `json:"kind"`
	Threshold float64 `json:"threshold"`
	Direction string  `json:"direction"`
	Price     float64 `json:"price"`
	PrevClose float64 `json:"prev_close,omitempty"`
	At        int64   `json:"at"` // Unix ms when the price was seen
}

func newAlertFrame(a quotehub.FiredAlert, typ string) alertFrame {
	return alertFrame{Type: typ, ID: a.ID, RuleID: a.RuleID, Symbol: a.Symbol, Kind: a.Kind, Threshold: a.Threshold,
		Direction: a.Direction, Price: a.Price, PrevClose: a.PrevClose, At: a.Time.UnixMilli()}
}

// sseAlert is the SSE event of a.
func sseAlert(a quotehub.FiredAlert) []byte {
	b := []byte("event: alert\n")
	if a.ID > 0 {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, a.ID, 10)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, mustJSON(newAlertFrame(a, ""))...)
	return append(b, '\n', '\n')
}

// PushAlert delivers a fired alert of user to the user's sessions on this
// node: an alert frame to each WebSocket, an alert event to each
// /v1/me/events stream. It never blocks.
func (s *Server) PushAlert(user string, a quotehub.FiredAlert) {
	frame := mustJSON(newAlertFrame(a, "alert"))
	s.opts.Hub.ForUser(user, func(c *hub.Client) {
		if c.Transport() == "ws" {
			c.SendControl(frame)
		}
	})
	s.events.each(user, func(st *eventStream) { st.offer(a) })
}

// eventStreams are the open /v1/me/events streams of this node, by user.
type eventStreams struct {
	mu sync.Mutex
	m  map[string]map[*eventStream]struct{}
}

func (x *eventStreams) add(user string, st *eventStream) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]map[*eventStream]struct{}{}
	}
	if x.m[user] == nil {
		x.m[user] = map[*eventStream]struct{}{}
	}
	x.m[user][st] = struct{}{}
}

func (x *eventStreams) remove(user string, st *eventStream) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m[user], st)
	if len(x.m[user]) == 0 {
		delete(x.m, user)
	}
}

func (x *eventStreams) each(user string, f func(*eventStream)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for st := range x.m[user] {
		f(st)
	}
}

// eventStream is one /v1/me/events stream. While it replays the log,
// live alerts wait in pending; every alert with an id goes out once, in
// increasing id order.
type eventStream struct {
	client *hub.Client

	mu        sync.Mutex
	replaying bool
	pending   []quotehub.FiredAlert
	last      int64 // the highest alert id sent
}

// offer sends a live alert, or keeps it for after the replay.
func (st *eventStream) offer(a quotehub.FiredAlert) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.replaying {
		st.pending = append(st.pending, a)
		return
	}
	st.sendLocked(a)
}

func (st *eventStream) sendLocked(a quotehub.FiredAlert) {
	if a.ID > 0 && a.ID <= st.last {
		return // replayed already, or delivered twice by the bus
	}
	if a.ID > 0 {
		st.last = a.ID
	}
	st.client.SendControl(sseAlert(a))
}

// finishReplay sends the replayed alerts, then those that arrived live
// meanwhile, and goes live.
func (st *eventStream) finishReplay(replayed []quotehub.FiredAlert) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, a := range replayed {
		st.sendLocked(a)
	}
	slices.SortStableFunc(st.pending, func(a, b quotehub.FiredAlert) int {
		switch {
		case a.ID == b.ID:
			return 0
		case a.ID < b.ID:
			return -1
		default:
			return 1
		}
	})
	for _, a := range st.pending {
		st.sendLocked(a)
	}
	st.pending, st.replaying = nil, false
}

// lastEventID reads where a reconnecting stream left off: the
// Last-Event-ID header, else ?last_event_id=. Absent means no replay (-1).
func lastEventID(c echo.Context) (int64, error) {
	raw := strings.TrimSpace(c.Request().Header.Get("Last-Event-ID"))
	if raw == "" {
		raw = c.QueryParam("last_event_id")
	}
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, quotehub.Errorf(quotehub.EBadRequest, "Last-Event-ID must be an alert id (a number from 0), not %q.", clipHeader(raw))
	}
	return n, nil
}

// serveEvents opens GET /v1/me/events, the signed-in user's stream of
// alerts. A token is required (header or token=).
func (s *Server) serveEvents(c echo.Context) error {
	p, ok, err := s.authenticate(c.Request(), true, true)
	switch {
	case err != nil:
		return s.writeError(c, err)
	case !ok:
		return s.writeError(c, quotehub.Errorf(quotehub.EUnauthorized, "A bearer token is required."))
	}
	if err := quotehub.ValidateUser(p.UserID); err != nil {
		return s.writeError(c, err)
	}
	if s.opts.Users == nil {
		return s.writeError(c, quotehub.Errorf(quotehub.EUnavailable, "This node keeps no user data."))
	}
	after, err := lastEventID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	ctx := c.Request().Context()
	st := &eventStream{replaying: after >= 0, last: max(after, 0)}
	return s.openSSE(c, sseStream{
		transport: "events", user: p, hasUser: true,
		opened: func(client *hub.Client) {
			st.client = client
			s.events.add(p.UserID, st) // live alerts from now on; those during the replay wait
			if after < 0 {
				return
			}
			replayed, err := s.replay(ctx, p.UserID, after)
			if err != nil {
				client.SendControl(sseError(err))
			}
			st.finishReplay(replayed)
		},
		ended: func(*hub.Client) { s.events.remove(p.UserID, st) },
	})
}

// replay reads the user's alerts after id: the newest ReplayLimit.
func (s *Server) replay(ctx context.Context, user string, after int64) ([]quotehub.FiredAlert, error) {
	var out []quotehub.FiredAlert
	for {
		page, err := s.opts.Users.FiredAlerts(ctx, user, after, 0)
		if err != nil {
			return out, err
		}
		out = append(out, page...)
		if len(out) > ReplayLimit {
			out = out[len(out)-ReplayLimit:]
		}
		if len(page) == 0 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// sseError is the error event of err.
func sseError(err error) []byte {
	return []byte("event: error\ndata: " + string(mustJSON(map[string]string{
		"code": quotehub.ErrorCode(err), "message": quotehub.ErrorMessage(err),
	})) + "\n\n")
}

// listFired answers GET /v1/me/alerts/fired?after=ID&limit=N: the user's
// fired alerts after ID (default 0), oldest first, at most N (default and
// most: the store's window).
func (s *Server) listFired(c echo.Context) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	num := func(name string) (int64, error) {
		raw := c.QueryParam(name)
		if raw == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return 0, quotehub.Errorf(quotehub.EBadRequest, "%s must be a number from 0, not %q.", name, clipHeader(raw))
		}
		return n, nil
	}
	after, err := num("after")
	if err != nil {
		return err
	}
	limit, err := num("limit")
	if err != nil {
		return err
	}
	fired, err := st.FiredAlerts(c.Request().Context(), user, after, int(min(limit, int64(s.opts.UserLimits.FiredWindow))))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-cache")
	return c.JSON(http.StatusOK, map[string]any{"alerts": fired})
}

// rulesChanged tells every node that user's alert rules changed, so each
// reloads them. A failed publish is logged: the nodes catch up at their
// next resync.
func (s *Server) rulesChanged(c echo.Context, user string) {
	s.publishUser(c, quotehub.UserEvent{User: user, Kind: quotehub.UserRulesChanged})
}

// publishUser publishes ev on the user bus, if there is one. What it
// tells of is stored already: a failed publish is logged, not the
// request's error, and the nodes catch up at their next resync.
func (s *Server) publishUser(c echo.Context, ev quotehub.UserEvent) {
	if s.opts.UserBus == nil {
		return
	}
	if err := s.opts.UserBus.PublishUser(context.WithoutCancel(c.Request().Context()), ev); err != nil {
		s.log.Warn().Err(err).Str("kind", ev.Kind).Msg("publishing a user event failed")
	}
}
