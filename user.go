package quotehub

import (
	"context"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// A user's data: named watchlists, one portfolio of holdings, and price
// alert rules with the log of the alerts they fired. Users are named by the
// "sub" of their token (Principal.UserID); quotehub keeps nothing else about
// them. Every resource belongs to exactly one user: another user's id is
// ENotFound, never EForbidden, so that its existence is not revealed.

// Watchlist is a named, ordered list of symbols.
type Watchlist struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Symbols []string `json:"symbols"`
	// Version starts at 1 and grows by one with every change; it is the
	// watchlist's ETag and what If-Match names.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WatchlistUpdate changes the fields that are not nil.
type WatchlistUpdate struct {
	Name    *string
	Symbols *[]string
}

// Holding is one position of a portfolio. AvgCost is the average price paid
// per unit, in Currency.
type Holding struct {
	Symbol   string  `json:"symbol"`
	Quantity float64 `json:"quantity"`
	AvgCost  float64 `json:"avg_cost"`
	Currency string  `json:"currency"`
}

// Portfolio is a user's holdings, in the order the user gave them, and the
// currency totals are converted to. A user who never wrote one has an
// empty portfolio at version 0 in DefaultBaseCurrency.
type Portfolio struct {
	BaseCurrency string    `json:"base_currency"`
	Holdings     []Holding `json:"holdings"`
	Version      int64     `json:"version"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

// DefaultBaseCurrency is the base currency of a portfolio that names none.
const DefaultBaseCurrency = "KRW"

// Trade sides.
const (
	Buy  = "buy"
	Sell = "sell"
)

// Trade is one buy or sell that updates a holding: a buy raises the
// quantity and recomputes the average cost (weighted by quantity), a sell
// lowers the quantity and keeps the average cost; a holding sold down to
// zero is removed. Selling more than is held is EConflict.
type Trade struct {
	ID       int64     `json:"id,omitempty"` // set by the store, increasing per user
	Symbol   string    `json:"symbol"`
	Side     string    `json:"side"`
	Quantity float64   `json:"quantity"`
	Price    float64   `json:"price"`
	Currency string    `json:"currency"`
	Time     time.Time `json:"time"`
}

// Alert rule kinds.
const (
	AlertAbove   = "above"    // the price rises to or above Threshold
	AlertBelow   = "below"    // the price falls to or below Threshold
	AlertCross   = "cross"    // the price crosses Threshold either way
	AlertMovePct = "move_pct" // the change from the previous close reaches Threshold % (up if positive, down if negative)
)

// AlertRule is one price alert of a user. After firing, a rule re-arms
// only once the price has gone back beyond Threshold × (1 ∓ Rearm), so
// that a price hovering at the line does not fire again and again.
type AlertRule struct {
	// ID is unique across users (an evaluator keys every user's rules by
	// it), positive and below 2^53, so it survives JSON in a browser.
	ID        int64     `json:"id"`
	UserID    string    `json:"-"`
	Symbol    string    `json:"symbol"`
	Kind      string    `json:"kind"`
	Threshold float64   `json:"threshold"` // a price; for move_pct a change in percent (5 = +5 %, -5 = -5 %)
	Rearm     float64   `json:"rearm"`     // a fraction of Threshold, 0 to 0.5; 0 = the evaluator's default (1 %)
	Enabled   bool      `json:"enabled"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AlertRuleUpdate changes the fields that are not nil.
type AlertRuleUpdate struct {
	Symbol    *string
	Kind      *string
	Threshold *float64
	Rearm     *float64
	Enabled   *bool
}

// FiredAlert is one entry of a user's alert log. ID increases by one with
// every alert of that user; it is what a reconnecting widget names to get
// what it missed.
type FiredAlert struct {
	ID        int64     `json:"id"`
	RuleID    int64     `json:"rule_id"`
	Symbol    string    `json:"symbol"`
	Kind      string    `json:"kind"`
	Threshold float64   `json:"threshold"`
	Direction string    `json:"direction"` // "up" or "down": which way the price went through the line
	Price     float64   `json:"price"`
	PrevClose float64   `json:"prev_close"` // the previous close a move_pct was measured from; 0 for the other kinds
	Time      time.Time `json:"time"`
}

// UserLimits bound what one user may store. Zero fields take the defaults
// of DefaultUserLimits.
type UserLimits struct {
	MaxWatchlists int // watchlists per user; default 50
	MaxSymbols    int // symbols per watchlist (the node's symbol limit); default 200
	MaxHoldings   int // holdings per portfolio; default 500
	MaxAlertRules int // alert rules per user; default 200
	MaxNameLen    int // characters of a watchlist name; default 64
	// FiredWindow is how many of the newest fired alerts of a user are
	// kept (and can be replayed); default 1000.
	FiredWindow int
}

// DefaultUserLimits are the limits of a zero UserLimits.
var DefaultUserLimits = UserLimits{
	MaxWatchlists: 50, MaxSymbols: 200, MaxHoldings: 500, MaxAlertRules: 200, MaxNameLen: 64, FiredWindow: 1000,
}

// WithDefaults returns l with every zero field set from DefaultUserLimits.
func (l UserLimits) WithDefaults() UserLimits {
	d := DefaultUserLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxWatchlists, d.MaxWatchlists)
	set(&l.MaxSymbols, d.MaxSymbols)
	set(&l.MaxHoldings, d.MaxHoldings)
	set(&l.MaxAlertRules, d.MaxAlertRules)
	set(&l.MaxNameLen, d.MaxNameLen)
	set(&l.FiredWindow, d.FiredWindow)
	return l
}

// AnyVersion as the expected version of a write means "whatever is
// current": the write does not check (no If-Match). Version 0 is that of
// a portfolio never written, so it can be expected like any other.
const AnyVersion int64 = -1

// UserStore keeps users' watchlists, portfolios, alert rules and fired
// alerts. Implementations are safe for concurrent use and run every call
// under a deadline. Writes that take an expected version (ifVersion) fail
// with EPreconditionFailed when the stored version differs, and change
// nothing; AnyVersion skips the check. Every write is atomic: a failed
// call leaves nothing half-written. A store that cannot be reached answers
// EUnavailable.
type UserStore interface {
	// Watchlists returns the user's watchlists in creation order.
	Watchlists(ctx context.Context, user string) ([]Watchlist, error)
	// Watchlist returns one watchlist of the user (ENotFound otherwise).
	Watchlist(ctx context.Context, user, id string) (Watchlist, error)
	// CreateWatchlist stores w (its Name and Symbols) under a new id, at
	// version 1. A name the user already uses, or a watchlist past
	// MaxWatchlists, is EConflict; past MaxSymbols it is ETooManySymbols.
	CreateWatchlist(ctx context.Context, user string, w Watchlist) (Watchlist, error)
	// UpdateWatchlist applies upd and bumps the version.
	UpdateWatchlist(ctx context.Context, user, id string, upd WatchlistUpdate, ifVersion int64) (Watchlist, error)
	// DeleteWatchlist removes a watchlist.
	DeleteWatchlist(ctx context.Context, user, id string, ifVersion int64) error

	// Portfolio returns the user's portfolio (empty, version 0, if none).
	Portfolio(ctx context.Context, user string) (Portfolio, error)
	// PutPortfolio replaces the base currency and every holding.
	PutPortfolio(ctx context.Context, user string, p Portfolio, ifVersion int64) (Portfolio, error)
	// AddTrade records t and applies it to the holding of its symbol.
	AddTrade(ctx context.Context, user string, t Trade, ifVersion int64) (Portfolio, Trade, error)
	// Trades returns the user's newest trades, newest first, at most limit.
	Trades(ctx context.Context, user string, limit int) ([]Trade, error)

	// AlertRules returns the user's alert rules in creation order.
	AlertRules(ctx context.Context, user string) ([]AlertRule, error)
	// AlertRule returns one alert rule of the user.
	AlertRule(ctx context.Context, user string, id int64) (AlertRule, error)
	// CreateAlertRule stores r under a new id, at version 1.
	CreateAlertRule(ctx context.Context, user string, r AlertRule) (AlertRule, error)
	// UpdateAlertRule applies upd and bumps the version.
	UpdateAlertRule(ctx context.Context, user string, id int64, upd AlertRuleUpdate, ifVersion int64) (AlertRule, error)
	// DeleteAlertRule removes an alert rule.
	DeleteAlertRule(ctx context.Context, user string, id int64, ifVersion int64) error
	// EnabledAlertRules pages through the enabled rules of every user in
	// id order, those with ids above afterID, at most limit (UserID set);
	// it is how an evaluator loads its rules.
	EnabledAlertRules(ctx context.Context, afterID int64, limit int) ([]AlertRule, error)

	// AppendFiredAlert records a fired alert under the user's next id
	// (ignoring a.ID) and forgets the user's alerts older than the window.
	AppendFiredAlert(ctx context.Context, user string, a FiredAlert) (FiredAlert, error)
	// FiredAlerts returns the user's alerts with ids above afterID, oldest
	// first, at most limit (capped at the window).
	FiredAlerts(ctx context.Context, user string, afterID int64, limit int) ([]FiredAlert, error)

	// Ready reports whether the store answers (HealthChecker).
	Ready(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// ValidateUser checks a user id: 1–255 bytes of UTF-8 without control
// characters (a token's "sub").
func ValidateUser(user string) error {
	if user == "" || len(user) > 255 || !utf8.ValidString(user) || strings.ContainsFunc(user, isControl) {
		return Errorf(EUnauthorized, "The token names no usable user.")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckWatchlist validates a watchlist's name and symbols against lim and
// returns them normalised: the name trimmed, the symbols normalised with
// duplicates dropped (first appearance kept).
func CheckWatchlist(name string, symbols []string, lim UserLimits) (string, []string, error) {
	name = strings.TrimSpace(name)
	if err := CheckName(name, lim); err != nil {
		return "", nil, err
	}
	syms, err := CheckSymbols(symbols, lim.MaxSymbols)
	return name, syms, err
}

// CheckName validates a watchlist name (already trimmed).
func CheckName(name string, lim UserLimits) error {
	switch {
	case name == "":
		return Errorf(EBadRequest, "A watchlist needs a name.")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, isControl):
		return Errorf(EBadRequest, "A watchlist name must be text without control characters.")
	case utf8.RuneCountInString(name) > lim.MaxNameLen:
		return Errorf(EBadRequest, "A watchlist name has at most %d characters.", lim.MaxNameLen)
	}
	return nil
}

// CheckSymbols normalises a list of symbols, dropping repeats, and refuses
// a malformed one (EInvalidSymbol) or more than max (ETooManySymbols).
func CheckSymbols(symbols []string, max int) ([]string, error) {
	out := make([]string, 0, len(symbols))
	for _, n := range NormalizeList(symbols) {
		if n.Err != nil {
			return nil, n.Err
		}
		out = append(out, n.Symbol)
	}
	if len(out) > max {
		return nil, Errorf(ETooManySymbols, "A list holds at most %d symbols; this one has %d.", max, len(out))
	}
	return out, nil
}

// CheckCurrency validates an ISO 4217-like currency code: three letters,
// returned upper-cased.
func CheckCurrency(c string) (string, error) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if len(c) != 3 || strings.IndexFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return "", Errorf(EBadRequest, "%q is not a currency: use a three-letter code such as KRW or USD.", clip(c))
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// finite reports whether x is a usable number (not NaN or infinite).
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// CheckPortfolio validates and normalises a portfolio: the base currency
// (DefaultBaseCurrency when empty), each holding's symbol, a positive
// quantity, a non-negative average cost and a currency; a symbol held
// twice is EBadRequest.
func CheckPortfolio(p Portfolio, lim UserLimits) (Portfolio, error) {
	out := Portfolio{BaseCurrency: p.BaseCurrency, Holdings: make([]Holding, 0, len(p.Holdings))}
	if out.BaseCurrency == "" {
		out.BaseCurrency = DefaultBaseCurrency
	}
	var err error
	if out.BaseCurrency, err = CheckCurrency(out.BaseCurrency); err != nil {
		return Portfolio{}, err
	}
	if len(p.Holdings) > lim.MaxHoldings {
		return Portfolio{}, Errorf(ETooManySymbols, "A portfolio holds at most %d symbols; this one has %d.", lim.MaxHoldings, len(p.Holdings))
	}
	seen := map[string]bool{}
	for _, h := range p.Holdings {
		if h.Symbol, err = NormalizeSymbol(h.Symbol); err != nil {
			return Portfolio{}, err
		}
		if seen[h.Symbol] {
			return Portfolio{}, Errorf(EBadRequest, "%s is held twice: give one holding per symbol.", h.Symbol)
		}
		seen[h.Symbol] = true
		if !finite(h.Quantity) || h.Quantity <= 0 {
			return Portfolio{}, Errorf(EBadRequest, "The quantity of %s must be a positive number.", h.Symbol)
		}
		if !finite(h.AvgCost) || h.AvgCost < 0 {
			return Portfolio{}, Errorf(EBadRequest, "The average cost of %s must be a number of at least 0.", h.Symbol)
		}
		if h.Currency, err = CheckCurrency(h.Currency); err != nil {
			return Portfolio{}, err
		}
		out.Holdings = append(out.Holdings, h)
	}
	return out, nil
}

// CheckTrade validates a trade: symbol, side, positive quantity,
// non-negative price, currency.
func CheckTrade(t Trade) (Trade, error) {
	var err error
	if t.Symbol, err = NormalizeSymbol(t.Symbol); err != nil {
		return Trade{}, err
	}
	if t.Side != Buy && t.Side != Sell {
		return Trade{}, Errorf(EBadRequest, "A trade's side is buy or sell, not %q.", clip(t.Side))
	}
	if !finite(t.Quantity) || t.Quantity <= 0 {
		return Trade{}, Errorf(EBadRequest, "A trade's quantity must be a positive number.")
	}
	if !finite(t.Price) || t.Price < 0 {
		return Trade{}, Errorf(EBadRequest, "A trade's price must be a number of at least 0.")
	}
	if t.Currency, err = CheckCurrency(t.Currency); err != nil {
		return Trade{}, err
	}
	return t, nil
}

// ApplyTrade returns the holdings after t (already checked): a buy of a
// symbol not held appends a holding; a sell of everything removes it.
func ApplyTrade(holdings []Holding, t Trade, lim UserLimits) ([]Holding, error) {
	out := append([]Holding(nil), holdings...)
	i := -1
	for j, h := range out {
		if h.Symbol == t.Symbol {
			i = j
			break
		}
	}
	if i >= 0 && out[i].Currency != t.Currency {
		return nil, Errorf(EBadRequest, "%s is held in %s; the trade is in %s.", t.Symbol, out[i].Currency, t.Currency)
	}
	switch {
	case t.Side == Buy && i < 0:
		if len(out) >= lim.MaxHoldings {
			return nil, Errorf(ETooManySymbols, "A portfolio holds at most %d symbols.", lim.MaxHoldings)
		}
		out = append(out, Holding{Symbol: t.Symbol, Quantity: t.Quantity, AvgCost: t.Price, Currency: t.Currency})
	case t.Side == Buy:
		h := &out[i]
		q := h.Quantity + t.Quantity
		h.AvgCost = (h.Quantity*h.AvgCost + t.Quantity*t.Price) / q
		h.Quantity = q
	case i < 0:
		return nil, Errorf(EConflict, "Cannot sell %g %s: none is held.", t.Quantity, t.Symbol)
	default:
		h := &out[i]
		// A relative tolerance so that selling what a series of buys added
		// up to in floating point sells it all.
		left := h.Quantity - t.Quantity
		if left < -1e-9*h.Quantity {
			return nil, Errorf(EConflict, "Cannot sell %g %s: %g is held.", t.Quantity, t.Symbol, h.Quantity)
		}
		if left <= 1e-9*h.Quantity {
			out = append(out[:i], out[i+1:]...)
		} else {
			h.Quantity = left
		}
	}
	return out, nil
}

// CheckAlertRule validates a rule's symbol, kind and numbers, and returns
// it normalised.
func CheckAlertRule(r AlertRule) (AlertRule, error) {
	var err error
	if r.Symbol, err = NormalizeSymbol(r.Symbol); err != nil {
		return AlertRule{}, err
	}
	switch r.Kind {
	case AlertAbove, AlertBelow, AlertCross:
		if !finite(r.Threshold) || r.Threshold <= 0 {
			return AlertRule{}, Errorf(EBadRequest, "An alert's threshold must be a positive price.")
		}
	case AlertMovePct:
		if !finite(r.Threshold) || r.Threshold == 0 || math.Abs(r.Threshold) > 1000 {
			return AlertRule{}, Errorf(EBadRequest, "A move_pct alert's threshold is a change in percent, not 0 and at most ±1000 (5: up 5 %%, -5: down 5 %%).")
		}
	default:
		return AlertRule{}, Errorf(EBadRequest, "An alert's kind is above, below, cross or move_pct, not %q.", clip(r.Kind))
	}
	if !finite(r.Rearm) || r.Rearm < 0 || r.Rearm > 0.5 {
		return AlertRule{}, Errorf(EBadRequest, "An alert's rearm is a fraction of its threshold from 0 to 0.5 (0: 1 %%).")
	}
	return r, nil
}

// Apply returns r with the fields of u that are set.
func (u AlertRuleUpdate) Apply(r AlertRule) AlertRule {
	if u.Symbol != nil {
		r.Symbol = *u.Symbol
	}
	if u.Kind != nil {
		r.Kind = *u.Kind
	}
	if u.Threshold != nil {
		r.Threshold = *u.Threshold
	}
	if u.Rearm != nil {
		r.Rearm = *u.Rearm
	}
	if u.Enabled != nil {
		r.Enabled = *u.Enabled
	}
	return r
}
