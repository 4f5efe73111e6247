package yahoo

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"quotehub"
)

// chartResponse is the part of a /v8/finance/chart answer the provider
// reads. Optional numbers are pointers so that a missing or null field is
// told apart from a zero.
type chartResponse struct {
	Chart *struct {
		Result []struct {
			Meta chartMeta `json:"meta"`
		} `json:"result"`
		Error *struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	} `json:"chart"`
}

// chartMeta is chart.result[0].meta.
type chartMeta struct {
	Currency             *string  `json:"currency"` // null for some instruments
	ExchangeName         string   `json:"exchangeName"`
	RegularMarketPrice   *float64 `json:"regularMarketPrice"`
	RegularMarketTime    *float64 `json:"regularMarketTime"` // epoch seconds
	RegularMarketVolume  *float64 `json:"regularMarketVolume"`
	ChartPreviousClose   *float64 `json:"chartPreviousClose"`
	PreviousClose        *float64 `json:"previousClose"` // often missing or null
	CurrentTradingPeriod *struct {
		Regular *struct {
			Start float64 `json:"start"` // epoch seconds
			End   float64 `json:"end"`
		} `json:"regular"`
	} `json:"currentTradingPeriod"`
}

// malformed is a payload that decoded but cannot make a valid quote.
type malformed struct{ reason string }

func (m *malformed) Error() string { return "malformed chart payload: " + m.reason }

// Plausible regularMarketTime values in epoch seconds: 2001-09-09 to 2286.
// Anything from 1e11 up is taken for milliseconds, a unit mistake that
// would otherwise put the trade thousands of years ahead.
const (
	minSeconds = 1e9
	maxSeconds = 1e10
)

// parse decodes a 200 chart body into the quote of sym. A body that is not
// the chart envelope is upstream_unavailable; a chart error "Not Found" or
// an empty chart is unknown_symbol; a chart that cannot make a valid quote
// is a *malformed.
func (p *Provider) parse(sym string, body []byte) (quotehub.Quote, error) {
	var r chartResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return quotehub.Quote{}, quotehub.Errorf(quotehub.EUpstreamUnavailable,
			"yahoo: %s: the answer is not chart JSON", sym)
	}
	c := r.Chart
	switch {
	case c == nil:
		// {"chart":null} has been seen for a symbol Yahoo does not know.
		return quotehub.Quote{}, quotehub.Errorf(quotehub.EUnknownSymbol, "yahoo: unknown symbol %q", sym)
	case c.Error != nil && strings.EqualFold(c.Error.Code, "Not Found"):
		return quotehub.Quote{}, quotehub.Errorf(quotehub.EUnknownSymbol, "yahoo: unknown symbol %q", sym)
	case c.Error != nil:
		return quotehub.Quote{}, quotehub.Errorf(quotehub.EUpstreamUnavailable,
			"yahoo: %s: chart error %q", sym, c.Error.Code)
	case len(c.Result) == 0:
		return quotehub.Quote{}, quotehub.Errorf(quotehub.EUnknownSymbol, "yahoo: no chart for %q", sym)
	}
	return p.quoteOf(sym, &c.Result[0].Meta)
}

// quoteOf maps a chart's meta to a quote, or explains why it cannot.
func (p *Provider) quoteOf(sym string, m *chartMeta) (quotehub.Quote, error) {
	switch {
	case m.RegularMarketPrice == nil:
		return quotehub.Quote{}, &malformed{"regularMarketPrice is missing"}
	case !(*m.RegularMarketPrice > 0) || math.IsInf(*m.RegularMarketPrice, 0):
		return quotehub.Quote{}, &malformed{fmt.Sprintf("regularMarketPrice %v is not a positive number", *m.RegularMarketPrice)}
	case m.RegularMarketTime == nil:
		return quotehub.Quote{}, &malformed{"regularMarketTime is missing"}
	case *m.RegularMarketTime >= maxSeconds:
		return quotehub.Quote{}, &malformed{fmt.Sprintf("regularMarketTime %.0f is milliseconds, not seconds", *m.RegularMarketTime)}
	case *m.RegularMarketTime < minSeconds:
		return quotehub.Quote{}, &malformed{fmt.Sprintf("regularMarketTime %.0f is not a plausible time", *m.RegularMarketTime)}
	}
	q := quotehub.Quote{
		Symbol:    sym,
		Price:     *m.RegularMarketPrice,
		Currency:  currencyOf(sym, m.Currency),
		TradeTime: int64(*m.RegularMarketTime) * 1000,
		Source:    Name,
		Market:    p.marketOf(sym, m),
	}
	// previousClose is the last session's close. It is often missing or
	// null; chartPreviousClose is the close of the bar before the chart's
	// range, which is the same session's close because every request asks
	// for range=1d (with a longer range it would be days older). Zero or
	// missing in both means no change can be computed, which is not 0 %.
	if prev, ok := positive(m.PreviousClose); ok {
		q.PrevClose = prev
	} else if prev, ok := positive(m.ChartPreviousClose); ok {
		q.PrevClose = prev
	}
	if q.PrevClose > 0 {
		q.Change = q.Price - q.PrevClose
		q.ChangeRate = q.Change / q.PrevClose
		q.Has |= quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate
	}
	if v := m.RegularMarketVolume; v != nil && *v >= 0 && !math.IsInf(*v, 0) {
		q.Volume = *v
		q.Has |= quotehub.HasVolume
	}
	if err := q.Validate(); err != nil {
		return quotehub.Quote{}, &malformed{err.Error()}
	}
	return q, nil
}

// positive returns *f when it is a finite positive number.
func positive(f *float64) (float64, bool) {
	if f == nil || !(*f > 0) || math.IsInf(*f, 0) {
		return 0, false
	}
	return *f, true
}

// marketOf is open while now is inside the regular period Yahoo reports,
// and closed outside it. Without a usable period it falls back to the
// calendar of the symbol's exchange.
func (p *Provider) marketOf(sym string, m *chartMeta) string {
	now := p.now()
	if tp := m.CurrentTradingPeriod; tp != nil && tp.Regular != nil &&
		tp.Regular.Start >= minSeconds && tp.Regular.End > tp.Regular.Start && tp.Regular.End < maxSeconds {
		start := time.Unix(int64(tp.Regular.Start), 0)
		end := time.Unix(int64(tp.Regular.End), 0)
		if !now.Before(start) && now.Before(end) {
			return quotehub.MarketOpen
		}
		return quotehub.MarketClosed
	}
	return quotehub.CalendarOf(exchangeOf(sym)).State(now)
}

// korean reports whether sym is a KOSPI (.KS) or KOSDAQ (.KQ) listing.
func korean(sym string) bool {
	s := strings.ToUpper(sym)
	return strings.HasSuffix(s, ".KS") || strings.HasSuffix(s, ".KQ")
}

// exchangeOf is the calendar exchange of a Yahoo symbol: KRX for Korean
// listings, NYSE (which shares Nasdaq's hours) for the rest.
func exchangeOf(sym string) string {
	if korean(sym) {
		return quotehub.ExchangeKRX
	}
	return quotehub.ExchangeNYSE
}

// currencyOf is the upper-cased currency of the meta; when Yahoo sends none
// (it can be null) it is guessed from the listing: the quote currency of an
// FX pair, KRW for Korean symbols, USD for symbols without an exchange
// suffix, empty otherwise.
func currencyOf(sym string, c *string) string {
	if c != nil {
		if s := strings.ToUpper(strings.TrimSpace(*c)); s != "" {
			return s
		}
	}
	switch {
	case strings.HasPrefix(sym, "FX:") && len(sym) == 9:
		return sym[6:] // the pair's quote currency
	case korean(sym):
		return "KRW"
	case !strings.Contains(sym, "."):
		return "USD"
	}
	return ""
}
