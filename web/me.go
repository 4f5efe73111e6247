package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// The signed-in user's data under /v1/me: watchlists, the portfolio and
// its trades, alert rules. Every handler reads the user from the request's
// principal (requireUser), validates and normalises what it is given
// against the catalogue, and hands it to the UserStore, whose versions are
// the resources' ETags: a strong "N" for one resource, checked by
// If-Match on every write; a weak W/"…" for a collection, good for
// If-None-Match only.

// maxBodyBytes bounds a request body of /v1/me.
const maxBodyBytes = 64 << 10

// addMeRoutes adds the routes of users' data to the /v1/me group.
func (s *Server) addMeRoutes(me *echo.Group) {
	me.GET("/watchlists", s.listWatchlists)
	me.POST("/watchlists", s.createWatchlist)
	me.GET("/watchlists/:id", s.getWatchlist)
	me.PUT("/watchlists/:id", s.putWatchlist)
	me.PATCH("/watchlists/:id", s.patchWatchlist)
	me.DELETE("/watchlists/:id", s.deleteWatchlist)
	me.GET("/portfolio", s.getPortfolio)
	me.PUT("/portfolio", s.putPortfolio)
	me.GET("/portfolio/trades", s.listTrades)
	me.POST("/portfolio/trades", s.postTrade)
	me.GET("/alerts", s.listAlerts)
	me.GET("/alerts/fired", s.listFired)
	me.POST("/alerts", s.createAlert)
	me.GET("/alerts/:id", s.getAlert)
	me.PATCH("/alerts/:id", s.patchAlert)
	me.DELETE("/alerts/:id", s.deleteAlert)
}

// users returns the store and the request's user, or the error to answer.
func (s *Server) users(c echo.Context) (quotehub.UserStore, string, error) {
	p, ok := quotehub.PrincipalFrom(c.Request().Context())
	if !ok {
		return nil, "", quotehub.Errorf(quotehub.EUnauthorized, "A bearer token is required.")
	}
	if err := quotehub.ValidateUser(p.UserID); err != nil {
		return nil, "", err
	}
	if s.opts.Users == nil {
		return nil, "", quotehub.Errorf(quotehub.EUnavailable, "This node keeps no user data.")
	}
	return s.opts.Users, p.UserID, nil
}

// decode reads a JSON body into v: at most maxBodyBytes (else 413), no
// unknown fields, nothing after the value.
func decode(c echo.Context, v any) error {
	r := c.Request()
	body := http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, rerr := io.Copy(io.Discard, body); rerr != nil {
			err = rerr
		}
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The body is larger than %d bytes.", maxBodyBytes))
	case errors.Is(err, io.EOF):
		return quotehub.Errorf(quotehub.EBadRequest, "The request needs a JSON body.")
	case errors.As(err, &typeErr):
		return quotehub.Errorf(quotehub.EBadRequest, "Field %q must be %s, not JSON %s.", typeErr.Field, jsonKind(typeErr.Type.String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return quotehub.Errorf(quotehub.EBadRequest, "Unknown field %s.", clipHeader(strings.TrimPrefix(err.Error(), "json: unknown field ")))
	default:
		return quotehub.Errorf(quotehub.EBadRequest, "The body is not valid JSON: %v.", err)
	}
}

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.Contains(goType, "float"), strings.Contains(goType, "int"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	default:
		return "an object"
	}
}

// ifMatch reads If-Match: none (or *) is quotehub.AnyVersion; "N" is
// version N. A weak tag never matches (If-Match compares strongly), nor
// does a tag this server did not make: both are 412.
func ifMatch(c echo.Context) (int64, error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" || h == "*" {
		return quotehub.AnyVersion, nil
	}
	if strings.Contains(h, ",") {
		return 0, quotehub.Errorf(quotehub.EBadRequest, "If-Match takes one entity tag here.")
	}
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v < 0 || !strings.HasPrefix(h, `"`) || !strings.HasSuffix(h, `"`) || len(h) < 3 {
		return 0, quotehub.Errorf(quotehub.EPreconditionFailed, "If-Match %s names no version of this resource: read it again for its ETag.", clipHeader(h))
	}
	return v, nil
}

// clipHeader shortens what a client sent (a header, a field name) to
// quote it in a message.
func clipHeader(h string) string {
	if len(h) > 40 {
		return h[:40] + "…"
	}
	return h
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// weakETag is the tag of a collection: a hash of what identifies each
// member's version.
func weakETag(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
		_, _ = h.Write([]byte{0})
	}
	return `W/"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// reply writes v with its ETag, or 304 when If-None-Match names that tag
// (compared weakly, as If-None-Match does).
func reply(c echo.Context, status int, tag string, v any) error {
	if notModified(c, status, tag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(status, v)
}

// replyBytes is reply for a body already encoded, sent with its length
// (not chunked).
func replyBytes(c echo.Context, status int, tag string, body []byte) error {
	if notModified(c, status, tag) {
		return c.NoContent(http.StatusNotModified)
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	return c.JSONBlob(status, body)
}

// notModified sets the ETag and caching headers, and reports whether the
// answer is 304.
func notModified(c echo.Context, status int, tag string) bool {
	h := c.Response().Header()
	h.Set("ETag", tag)
	h.Set("Cache-Control", "private, no-cache")
	if status == http.StatusOK && c.Request().Method == http.MethodGet {
		strip := func(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "W/") }
		for t := range strings.SplitSeq(c.Request().Header.Get("If-None-Match"), ",") {
			if t = strip(t); t == "*" || t == strip(tag) {
				return true
			}
		}
	}
	return false
}

// created answers 201 with the new resource v, its ETag and Location.
func created(c echo.Context, location string, version int64, v any) error {
	c.Response().Header().Set("Location", location)
	return reply(c, http.StatusCreated, etag(version), v)
}

// knownSymbols normalises symbols (dropping repeats), refuses more than
// max, and checks each against the catalogue.
func (s *Server) knownSymbols(c echo.Context, symbols []string, max int) ([]string, error) {
	syms, err := quotehub.CheckSymbols(symbols, max)
	if err != nil {
		return nil, err
	}
	for _, sym := range syms {
		if _, err := s.lookup(c, sym); err != nil {
			return nil, err
		}
	}
	return syms, nil
}

// lookup returns the catalogue entry of a normalised symbol.
func (s *Server) lookup(c echo.Context, sym string) (quotehub.SymbolInfo, error) {
	info, ok, err := s.opts.Catalog.Lookup(c.Request().Context(), sym)
	if err != nil {
		return info, err
	}
	if !ok {
		return info, quotehub.Errorf(quotehub.EUnknownSymbol, "%s is not in the catalogue", sym)
	}
	return info, nil
}

// normalSymbol normalises one symbol and checks it against the catalogue.
func (s *Server) normalSymbol(c echo.Context, raw string) (quotehub.SymbolInfo, error) {
	sym, err := quotehub.NormalizeSymbol(raw)
	if err != nil {
		return quotehub.SymbolInfo{}, err
	}
	return s.lookup(c, sym)
}

// serveList answers a collection read: the user's items under key, with
// a weak ETag of their ids and versions.
func serveList[T any](s *Server, c echo.Context, key string,
	read func(quotehub.UserStore, context.Context, string) ([]T, error), idVersion func(T) (string, int64)) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	items, err := read(st, c.Request().Context(), user)
	if err != nil {
		return err
	}
	parts := make([]string, 0, len(items))
	for _, it := range items {
		id, v := idVersion(it)
		parts = append(parts, id+":"+strconv.FormatInt(v, 10))
	}
	return reply(c, http.StatusOK, weakETag(parts...), map[string]any{key: items})
}

// pathID reads the path's :id: a string (watchlists) or a positive
// number (alert rules). An id that cannot be one is not found.
func pathID[K string | int64](c echo.Context) (K, error) {
	var k K
	switch p := any(&k).(type) {
	case *string:
		*p = c.Param("id")
	case *int64:
		n, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || n <= 0 {
			return k, quotehub.Errorf(quotehub.ENotFound, "No such resource: %s.", clipHeader(c.Param("id")))
		}
		*p = n
	}
	return k, nil
}

// serveOne answers the read of the resource :id, with its version as ETag.
func serveOne[K string | int64, T any](s *Server, c echo.Context, read func(quotehub.UserStore, context.Context, string, K) (T, error), version func(T) int64) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	id, err := pathID[K](c)
	if err != nil {
		return err
	}
	v, err := read(st, c.Request().Context(), user, id)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, etag(version(v)), v)
}

// serveDelete deletes the resource :id under If-Match.
func serveDelete[K string | int64](s *Server, c echo.Context, del func(quotehub.UserStore, context.Context, string, K, int64) error) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	id, err := pathID[K](c)
	if err != nil {
		return err
	}
	if err := del(st, c.Request().Context(), user, id, want); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// writeRequest reads what a write needs: the store, the user, the version
// If-Match names and the body, into b.
func (s *Server) writeRequest(c echo.Context, b any) (quotehub.UserStore, string, int64, error) {
	st, user, err := s.users(c)
	if err != nil {
		return nil, "", 0, err
	}
	want, err := ifMatch(c)
	if err != nil {
		return nil, "", 0, err
	}
	return st, user, want, decode(c, b)
}

// createRequest is writeRequest for a create, which has no If-Match.
func (s *Server) createRequest(c echo.Context, b any) (quotehub.UserStore, string, error) {
	st, user, err := s.users(c)
	if err != nil {
		return nil, "", err
	}
	return st, user, decode(c, b)
}

// ---- watchlists

type watchlistBody struct {
	Name    *string   `json:"name"`
	Symbols *[]string `json:"symbols"`
	Add     []string  `json:"add"`
	Remove  []string  `json:"remove"`
}

func (s *Server) listWatchlists(c echo.Context) error {
	return serveList(s, c, "watchlists", quotehub.UserStore.Watchlists, func(w quotehub.Watchlist) (string, int64) { return w.ID, w.Version })
}

func (s *Server) getWatchlist(c echo.Context) error {
	return serveOne(s, c, quotehub.UserStore.Watchlist, func(w quotehub.Watchlist) int64 { return w.Version })
}

func (s *Server) createWatchlist(c echo.Context) error {
	var b watchlistBody
	st, user, err := s.createRequest(c, &b)
	if err != nil {
		return err
	}
	if b.Name == nil {
		return quotehub.Errorf(quotehub.EBadRequest, "A watchlist needs a name.")
	}
	if b.Add != nil || b.Remove != nil {
		return quotehub.Errorf(quotehub.EBadRequest, "add and remove are for PATCH; give symbols.")
	}
	var syms []string
	if b.Symbols != nil {
		if syms, err = s.knownSymbols(c, *b.Symbols, s.opts.UserLimits.MaxSymbols); err != nil {
			return err
		}
	}
	w, err := st.CreateWatchlist(c.Request().Context(), user, quotehub.Watchlist{Name: *b.Name, Symbols: syms})
	if err != nil {
		return err
	}
	s.listsChanged(c, user, watchlistPrefix+w.ID)
	return created(c, "/v1/me/watchlists/"+w.ID, w.Version, w)
}

// putWatchlist replaces a watchlist's name and symbols (both required).
func (s *Server) putWatchlist(c echo.Context) error {
	var b watchlistBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if b.Name == nil || b.Symbols == nil || b.Add != nil || b.Remove != nil {
		return quotehub.Errorf(quotehub.EBadRequest, "PUT replaces a watchlist: give name and symbols (PATCH changes parts).")
	}
	return s.updateWatchlist(c, b)
}

// patchWatchlist changes the name, replaces the symbols, or adds and
// removes symbols.
func (s *Server) patchWatchlist(c echo.Context) error {
	var b watchlistBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if b.Symbols != nil && (b.Add != nil || b.Remove != nil) {
		return quotehub.Errorf(quotehub.EBadRequest, "Give symbols, or add and remove, not both.")
	}
	if b.Name == nil && b.Symbols == nil && b.Add == nil && b.Remove == nil {
		return quotehub.Errorf(quotehub.EBadRequest, "Nothing to change: give name, symbols, add or remove.")
	}
	return s.updateWatchlist(c, b)
}

// editRetries is how often an add/remove without If-Match re-reads a list
// that another writer changed between the read and the write.
const editRetries = 3

func (s *Server) updateWatchlist(c echo.Context, b watchlistBody) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	lim := s.opts.UserLimits
	upd := quotehub.WatchlistUpdate{Name: b.Name}
	if b.Symbols != nil {
		syms, err := s.knownSymbols(c, *b.Symbols, lim.MaxSymbols)
		if err != nil {
			return err
		}
		upd.Symbols = &syms
	}
	ctx, id := c.Request().Context(), c.Param("id")
	if b.Add == nil && b.Remove == nil {
		w, err := st.UpdateWatchlist(ctx, user, id, upd, want)
		if err != nil {
			return err
		}
		s.listsChanged(c, user, watchlistPrefix+w.ID)
		return reply(c, http.StatusOK, etag(w.Version), w)
	}
	add, err := s.knownSymbols(c, b.Add, max(lim.MaxSymbols, len(b.Add)))
	if err != nil {
		return err
	}
	remove, err := quotehub.CheckSymbols(b.Remove, max(lim.MaxSymbols, len(b.Remove)))
	if err != nil {
		return err
	}
	// Read, edit, write guarded by the version read: a concurrent change
	// makes the write fail whole, and without If-Match it is redone on
	// the new list.
	for try := 0; ; try++ {
		cur, err := st.Watchlist(ctx, user, id)
		if err != nil {
			return err
		}
		if want != quotehub.AnyVersion && cur.Version != want {
			return quotehub.Errorf(quotehub.EPreconditionFailed, "The watchlist changed since (it is now at version %d): read it again.", cur.Version)
		}
		syms := edit(cur.Symbols, add, remove)
		if len(syms) > lim.MaxSymbols {
			return quotehub.Errorf(quotehub.ETooManySymbols, "A list holds at most %d symbols; this one would have %d.", lim.MaxSymbols, len(syms))
		}
		upd.Symbols = &syms
		w, err := st.UpdateWatchlist(ctx, user, id, upd, cur.Version)
		if quotehub.ErrorCode(err) == quotehub.EPreconditionFailed && want == quotehub.AnyVersion && try < editRetries {
			continue
		}
		if err != nil {
			return err
		}
		s.listsChanged(c, user, watchlistPrefix+w.ID)
		return reply(c, http.StatusOK, etag(w.Version), w)
	}
}

// edit returns syms with add appended (those not there yet) and remove
// taken out, order otherwise kept.
func edit(syms, add, remove []string) []string {
	gone := make(map[string]bool, len(remove))
	for _, r := range remove {
		gone[r] = true
	}
	out := make([]string, 0, len(syms)+len(add))
	have := map[string]bool{}
	for _, s := range append(append([]string(nil), syms...), add...) {
		if !gone[s] && !have[s] {
			have[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) deleteWatchlist(c echo.Context) error {
	return serveDelete(s, c, func(st quotehub.UserStore, ctx context.Context, user, id string, want int64) error {
		if err := st.DeleteWatchlist(ctx, user, id, want); err != nil {
			return err
		}
		s.listsChanged(c, user, watchlistPrefix+id)
		return nil
	})
}

// ---- portfolio

type holdingBody struct {
	Symbol   string  `json:"symbol"`
	Quantity float64 `json:"quantity"`
	AvgCost  float64 `json:"avg_cost"`
	Currency string  `json:"currency"`
}

type portfolioBody struct {
	BaseCurrency string        `json:"base_currency"`
	Holdings     []holdingBody `json:"holdings"`
}

func (s *Server) getPortfolio(c echo.Context) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	p, err := st.Portfolio(c.Request().Context(), user)
	if err != nil {
		return err
	}
	return s.replyPortfolio(c, http.StatusOK, p)
}

func (s *Server) putPortfolio(c echo.Context) error {
	var b portfolioBody
	st, user, want, err := s.writeRequest(c, &b)
	if err != nil {
		return err
	}
	lim := s.opts.UserLimits
	if len(b.Holdings) > lim.MaxHoldings {
		return quotehub.Errorf(quotehub.ETooManySymbols, "A portfolio holds at most %d symbols; this one has %d.", lim.MaxHoldings, len(b.Holdings))
	}
	p := quotehub.Portfolio{BaseCurrency: b.BaseCurrency, Holdings: make([]quotehub.Holding, 0, len(b.Holdings))}
	for _, h := range b.Holdings {
		info, err := s.normalSymbol(c, h.Symbol)
		if err != nil {
			return err
		}
		p.Holdings = append(p.Holdings, quotehub.Holding{Symbol: info.Symbol, Quantity: h.Quantity, AvgCost: h.AvgCost,
			Currency: cmp.Or(h.Currency, info.Currency)})
	}
	p, err = st.PutPortfolio(c.Request().Context(), user, p, want)
	if err != nil {
		return err
	}
	s.listsChanged(c, user, hub.PortfolioList)
	return s.replyPortfolio(c, http.StatusOK, p)
}

type tradeBody struct {
	Symbol   string     `json:"symbol"`
	Side     string     `json:"side"`
	Quantity float64    `json:"quantity"`
	Price    float64    `json:"price"`
	Currency string     `json:"currency"`
	Time     *time.Time `json:"time"`
}

// postTrade records a trade and answers the trade and the portfolio after
// it; the ETag is the portfolio's.
func (s *Server) postTrade(c echo.Context) error {
	var b tradeBody
	st, user, want, err := s.writeRequest(c, &b)
	if err != nil {
		return err
	}
	info, err := s.normalSymbol(c, b.Symbol)
	if err != nil {
		return err
	}
	t := quotehub.Trade{Symbol: info.Symbol, Side: b.Side, Quantity: b.Quantity, Price: b.Price, Currency: cmp.Or(b.Currency, info.Currency)}
	if b.Time != nil {
		t.Time = *b.Time
	}
	p, t, err := st.AddTrade(c.Request().Context(), user, t, want)
	if err != nil {
		return err
	}
	s.listsChanged(c, user, hub.PortfolioList)
	return reply(c, http.StatusCreated, etag(p.Version), map[string]any{"trade": t, "portfolio": s.portfolioView(c, p)})
}

func (s *Server) listTrades(c echo.Context) error {
	st, user, err := s.users(c)
	if err != nil {
		return err
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return quotehub.Errorf(quotehub.EBadRequest, "limit must be a whole number from 1 to 1000.")
		}
		limit = n
	}
	ts, err := st.Trades(c.Request().Context(), user, limit)
	if err != nil {
		return err
	}
	parts := make([]string, 0, 1)
	if len(ts) > 0 {
		parts = append(parts, strconv.FormatInt(ts[0].ID, 10))
	}
	return reply(c, http.StatusOK, weakETag(append(parts, strconv.Itoa(limit))...), map[string]any{"trades": ts})
}

// ---- alert rules

type alertBody struct {
	Symbol    *string  `json:"symbol"`
	Kind      *string  `json:"kind"`
	Threshold *float64 `json:"threshold"`
	Rearm     *float64 `json:"rearm"`
	Enabled   *bool    `json:"enabled"`
}

func (s *Server) listAlerts(c echo.Context) error {
	return serveList(s, c, "alerts", quotehub.UserStore.AlertRules, func(r quotehub.AlertRule) (string, int64) {
		return strconv.FormatInt(r.ID, 10), r.Version
	})
}

func (s *Server) getAlert(c echo.Context) error {
	return serveOne(s, c, quotehub.UserStore.AlertRule, func(r quotehub.AlertRule) int64 { return r.Version })
}

// alertSymbol normalises and checks the symbol of an alert body, if any.
func (s *Server) alertSymbol(c echo.Context, b *alertBody) error {
	if b.Symbol == nil {
		return nil
	}
	info, err := s.normalSymbol(c, *b.Symbol)
	if err != nil {
		return err
	}
	b.Symbol = &info.Symbol
	return nil
}

func (s *Server) createAlert(c echo.Context) error {
	var b alertBody
	st, user, err := s.createRequest(c, &b)
	if err != nil {
		return err
	}
	if b.Symbol == nil || b.Kind == nil || b.Threshold == nil {
		return quotehub.Errorf(quotehub.EBadRequest, "An alert needs symbol, kind and threshold.")
	}
	if err := s.alertSymbol(c, &b); err != nil {
		return err
	}
	r := quotehub.AlertRuleUpdate{Symbol: b.Symbol, Kind: b.Kind, Threshold: b.Threshold, Rearm: b.Rearm, Enabled: b.Enabled}.
		Apply(quotehub.AlertRule{Enabled: true})
	r, err = st.CreateAlertRule(c.Request().Context(), user, r)
	if err != nil {
		return err
	}
	s.rulesChanged(c, user)
	return created(c, "/v1/me/alerts/"+strconv.FormatInt(r.ID, 10), r.Version, r)
}

func (s *Server) patchAlert(c echo.Context) error {
	var b alertBody
	st, user, want, err := s.writeRequest(c, &b)
	if err != nil {
		return err
	}
	id, err := pathID[int64](c)
	if err != nil {
		return err
	}
	if err := s.alertSymbol(c, &b); err != nil {
		return err
	}
	r, err := st.UpdateAlertRule(c.Request().Context(), user, id,
		quotehub.AlertRuleUpdate{Symbol: b.Symbol, Kind: b.Kind, Threshold: b.Threshold, Rearm: b.Rearm, Enabled: b.Enabled}, want)
	if err != nil {
		return err
	}
	s.rulesChanged(c, user)
	return reply(c, http.StatusOK, etag(r.Version), r)
}

func (s *Server) deleteAlert(c echo.Context) error {
	err := serveDelete(s, c, quotehub.UserStore.DeleteAlertRule)
	if err == nil {
		if p, ok := quotehub.PrincipalFrom(c.Request().Context()); ok {
			s.rulesChanged(c, p.UserID)
		}
	}
	return err
}
