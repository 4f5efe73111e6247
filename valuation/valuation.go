// Package valuation values a portfolio at the latest quotes: each position,
// totals per currency, and a total in the user's base currency converted
// at live FX quotes. It is pure: the caller passes the quotes (from the
// cache, or those a session already holds), so a valuation costs no
// upstream call and no store round trip of its own.
package valuation

import (
	"math"
	"slices"
	"strings"

	"quotehub"
)

// Holding is one position of a portfolio: the stored holding itself, so
// that a stored portfolio is valued without a copy of its holdings.
type Holding = quotehub.Holding

// Position is a holding valued at its symbol's latest quote.
type Position struct {
	Symbol        string  `json:"symbol"`
	Quantity      float64 `json:"quantity"`
	AvgCost       float64 `json:"avg_cost"`
	Currency      string  `json:"currency"`
	Priced        bool    `json:"priced"` // false: no quote yet; the figures below are 0 and not in the totals
	Price         float64 `json:"price"`
	Value         float64 `json:"value"`
	Cost          float64 `json:"cost"`
	PnL           float64 `json:"pnl"`
	PnLRate       float64 `json:"pnl_rate"`        // percent of cost
	DayChange     float64 `json:"day_change"`      // against the previous close
	DayChangeRate float64 `json:"day_change_rate"` // percent of the previous close's value
	Market        string  `json:"market,omitempty"`
}

// Total sums positions of one currency (or, for the base total, all the
// converted ones).
type Total struct {
	Currency      string  `json:"currency"`
	Value         float64 `json:"value"`
	Cost          float64 `json:"cost"`
	PnL           float64 `json:"pnl"`
	PnLRate       float64 `json:"pnl_rate"`
	DayChange     float64 `json:"day_change"`
	DayChangeRate float64 `json:"day_change_rate"`
	prevValue     float64 // value at the previous close, for DayChangeRate
}

// Valuation is a portfolio valued at the latest quotes.
type Valuation struct {
	Positions []Position `json:"positions"`
	Totals    []Total    `json:"totals"` // per currency, in currency order
	// Base is the total in the base currency: the per-currency totals
	// converted at FX quotes, leaving out currencies without one (listed
	// in Unconverted).
	Base        Total              `json:"total"`
	FX          map[string]float64 `json:"fx,omitempty"` // currency → units of the base currency per unit
	Unconverted []string           `json:"unconverted,omitempty"`
	Unpriced    []string           `json:"unpriced,omitempty"`
	AsOf        int64              `json:"as_of"` // newest fetched_at among the quotes used (Unix ms)
}

// FXSymbol is the symbol of the FX quote giving units of to per unit of
// from (FX:USDKRW: won per dollar).
func FXSymbol(from, to string) string { return "FX:" + from + to }

// Symbols returns every symbol a valuation of holdings in base reads: the
// holdings' symbols, then the FX pairs that convert their currencies
// (both directions: whichever the upstream quotes).
func Symbols(holdings []Holding, base string) []string {
	// Sized for the holdings and a few FX pairs: no growth on the way.
	out := make([]string, 0, len(holdings)+4)
	seen := make(map[string]struct{}, len(holdings)+4)
	add := func(s string) {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	for _, h := range holdings {
		add(h.Symbol)
	}
	for _, h := range holdings {
		if h.Currency != base {
			add(FXSymbol(h.Currency, base))
			add(FXSymbol(base, h.Currency))
		}
	}
	return out
}

// Value values holdings in base at the quotes quote returns.
func Value(holdings []Holding, base string, quote func(symbol string) (quotehub.Quote, bool)) Valuation {
	var v Valuation
	v.Revalue(holdings, base, quote)
	return v
}

// Revalue sets v to Value(holdings, base, quote), in the memory of v's
// slices and map where they have room: a read that values a portfolio,
// encodes it and forgets it can keep one Valuation for the next read.
func (v *Valuation) Revalue(holdings []Holding, base string, quote func(symbol string) (quotehub.Quote, bool)) {
	clear(v.FX)
	*v = Valuation{Positions: v.Positions[:0], Totals: v.Totals[:0], Base: Total{Currency: base}, FX: v.FX,
		Unconverted: v.Unconverted[:0], Unpriced: v.Unpriced[:0]}
	if v.Positions == nil {
		v.Positions = make([]Position, 0, len(holdings)) // [], not null, for no holdings
	}
	for _, h := range holdings {
		p := Position{Symbol: h.Symbol, Quantity: h.Quantity, AvgCost: h.AvgCost, Currency: h.Currency}
		q, ok := quote(h.Symbol)
		if !ok || !(q.Price > 0) {
			v.Unpriced = append(v.Unpriced, h.Symbol)
			v.Positions = append(v.Positions, p)
			continue
		}
		v.AsOf = max(v.AsOf, q.FetchedAt)
		p.Priced, p.Price, p.Market = true, q.Price, q.Market
		p.Value, p.Cost = h.Quantity*q.Price, h.Quantity*h.AvgCost
		p.PnL, p.PnLRate = p.Value-p.Cost, rate(p.Value-p.Cost, p.Cost)
		prev := p.Value
		if q.PrevClose > 0 {
			prev = h.Quantity * q.PrevClose
			p.DayChange, p.DayChangeRate = p.Value-prev, rate(p.Value-prev, prev)
		}
		v.Positions = append(v.Positions, p)
		v.totalOf(h.Currency).add(p.Value, p.Cost, prev)
	}
	for i := range v.Totals {
		v.Totals[i].finish()
	}
	slices.SortFunc(v.Totals, func(a, b Total) int { return strings.Compare(a.Currency, b.Currency) })
	for _, t := range v.Totals {
		r, ok, asOf := fxRate(t.Currency, base, quote)
		if !ok {
			v.Unconverted = append(v.Unconverted, t.Currency)
			continue
		}
		if t.Currency != base {
			if v.FX == nil {
				v.FX = map[string]float64{}
			}
			v.FX[t.Currency] = r
			v.AsOf = max(v.AsOf, asOf)
		}
		v.Base.add(t.Value*r, t.Cost*r, t.prevValue*r)
	}
	v.Base.finish()
	if len(v.Totals) == 0 {
		v.Totals = nil // null, as a fresh valuation has it
	}
}

// totalOf returns the total of currency, added to v.Totals if it is not
// there yet. A portfolio holds a few currencies: a search of the slice is
// cheaper than a map of them.
func (v *Valuation) totalOf(currency string) *Total {
	for i := range v.Totals {
		if v.Totals[i].Currency == currency {
			return &v.Totals[i]
		}
	}
	v.Totals = append(v.Totals, Total{Currency: currency})
	return &v.Totals[len(v.Totals)-1]
}

// Lookup returns a quote function for Value over quotes fetched for
// symbols, as quotehub.Cache.GetMany gives them for Symbols' list:
// quotes[i] is symbols[i]'s, a zero Quote (empty Symbol) where there is
// none; quotes may be shorter (a failed read) and then lacks the rest.
// Value asks for quotes in about the order Symbols lists them, so each
// search starts just past the last match: a valuation costs about one
// pass over the list, and no map of it.
func Lookup(symbols []string, quotes []quotehub.Quote) func(symbol string) (quotehub.Quote, bool) {
	symbols = symbols[:min(len(symbols), len(quotes))]
	next := 0
	return func(symbol string) (quotehub.Quote, bool) {
		for k := range len(symbols) {
			i := next + k
			if i >= len(symbols) {
				i -= len(symbols)
			}
			if symbols[i] == symbol {
				next = i + 1
				q := quotes[i]
				return q, q.Symbol != ""
			}
		}
		return quotehub.Quote{}, false
	}
}

// fxRate returns units of to per unit of from: 1 for the same currency,
// else the FX quote of the pair, or the inverse of the reverse pair's.
func fxRate(from, to string, quote func(string) (quotehub.Quote, bool)) (rate float64, ok bool, asOf int64) {
	if from == to {
		return 1, true, 0
	}
	if q, ok := quote(FXSymbol(from, to)); ok && q.Price > 0 {
		return q.Price, true, q.FetchedAt
	}
	if q, ok := quote(FXSymbol(to, from)); ok && q.Price > 0 {
		return 1 / q.Price, true, q.FetchedAt
	}
	return 0, false, 0
}

func (t *Total) add(value, cost, prev float64) {
	t.Value += value
	t.Cost += cost
	t.prevValue += prev
}

func (t *Total) finish() {
	t.PnL, t.PnLRate = t.Value-t.Cost, rate(t.Value-t.Cost, t.Cost)
	t.DayChange, t.DayChangeRate = t.Value-t.prevValue, rate(t.Value-t.prevValue, t.prevValue)
}

// rate is part/whole in percent, 0 when whole is 0.
func rate(part, whole float64) float64 {
	if whole == 0 || math.IsNaN(part/whole) {
		return 0
	}
	return part / whole * 100
}
