package web

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
	"quotehub/valuation"
)

// Lists reads a user's lists for the sessions that follow them (it
// implements hub.Lists): "portfolio", whose symbols are its holdings and
// the FX pairs the catalogue knows that convert them to the base
// currency, valued live; and "watchlist:ID".
type Lists struct {
	Users   quotehub.UserStore
	Catalog quotehub.Catalog
}

var _ hub.Lists = (*Lists)(nil)

// watchlistPrefix starts the name of a followed watchlist.
const watchlistPrefix = "watchlist:"

// List implements hub.Lists.
func (l *Lists) List(ctx context.Context, user, name string) (hub.List, error) {
	switch {
	case name == hub.PortfolioList:
		p, err := l.Users.Portfolio(ctx, user)
		if err != nil {
			return hub.List{}, err
		}
		syms, err := l.valued(ctx, p)
		if err != nil {
			return hub.List{}, err
		}
		return hub.List{Symbols: syms, Version: p.Version, Value: func(quote func(string) (quotehub.Quote, bool)) []byte {
			return portfolioFrame(p, valuation.Value(p.Holdings, p.BaseCurrency, quote))
		}}, nil
	case strings.HasPrefix(name, watchlistPrefix) && len(name) > len(watchlistPrefix):
		w, err := l.Users.Watchlist(ctx, user, strings.TrimPrefix(name, watchlistPrefix))
		if err != nil {
			return hub.List{}, err
		}
		return hub.List{Symbols: w.Symbols, Version: w.Version}, nil
	default:
		return hub.List{}, quotehub.Errorf(quotehub.EBadRequest, "%s names no list: use \"portfolio\" or \"watchlist:ID\"", clipHeader(string(quotehub.AppendJSONString(nil, name))))
	}
}

// valued returns the symbols a valuation of p reads: its holdings, and
// the FX pairs (of either direction) the catalogue knows.
func (l *Lists) valued(ctx context.Context, p quotehub.Portfolio) ([]string, error) {
	out := make([]string, 0, len(p.Holdings)+2)
	for _, s := range valuation.Symbols(p.Holdings, p.BaseCurrency) {
		if strings.HasPrefix(s, "FX:") {
			_, ok, err := l.Catalog.Lookup(ctx, s)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// valuedPortfolio is a portfolio valuation as a followed portfolio's
// frame carries it: the shape portfolioFrame encodes by hand (its tests
// compare the two).
type valuedPortfolio struct {
	Type         string `json:"type"`
	BaseCurrency string `json:"base_currency"`
	Version      int64  `json:"version"`
	valuation.Valuation
}

func portfolioFrame(p quotehub.Portfolio, v valuation.Valuation) []byte {
	b := make([]byte, 0, 256+len(v.Positions)*256)
	b = append(b, `{"type":"portfolio","base_currency":`...)
	b = quotehub.AppendJSONString(b, p.BaseCurrency)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	b = append(b, ',')
	b, err := v.AppendFields(b)
	if err != nil {
		// A position whose figures are not finite (an absurd quantity)
		// cannot be JSON: say so rather than send nothing.
		return hub.ErrorFrame(nil, quotehub.Errorf(quotehub.EInternal, "the portfolio cannot be valued: %v", err))
	}
	return append(b, '}')
}

// portfolioRead is GET /v1/me/portfolio: the stored portfolio and its
// valuation at the cached quotes. It is encoded by hand (appendJSON), as
// json.Marshal would encode this struct.
type portfolioRead struct {
	quotehub.Portfolio
	Valuation valuation.Valuation `json:"valuation"`
}

// appendJSON appends r as JSON.
func (r *portfolioRead) appendJSON(b []byte) ([]byte, error) {
	p := &r.Portfolio
	b = append(b, `{"base_currency":`...)
	b = quotehub.AppendJSONString(b, p.BaseCurrency)
	b = append(b, `,"holdings":`...)
	if p.Holdings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, h := range p.Holdings {
			if i > 0 {
				b = append(b, ',')
			}
			if !finite(h.Quantity) || !finite(h.AvgCost) {
				return b, valuation.ErrNotFinite
			}
			b = append(b, `{"symbol":`...)
			b = quotehub.AppendJSONString(b, h.Symbol)
			b = append(b, `,"quantity":`...)
			b = valuation.AppendFloat(b, h.Quantity)
			b = append(b, `,"avg_cost":`...)
			b = valuation.AppendFloat(b, h.AvgCost)
			b = append(b, `,"currency":`...)
			b = quotehub.AppendJSONString(b, h.Currency)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	if !p.UpdatedAt.IsZero() {
		t, err := p.UpdatedAt.MarshalJSON()
		if err != nil {
			return b, err
		}
		b = append(b, `,"updated_at":`...)
		b = append(b, t...)
	}
	b = append(b, `,"valuation":`...)
	b, err := r.Valuation.AppendJSON(b)
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// portfolioView values p at the quotes in the cache, in memory of its
// own (for a reply that keeps it: replyPortfolio's is pooled).
func (s *Server) portfolioView(c echo.Context, p quotehub.Portfolio) *portfolioRead {
	r := &portfolioRead{Portfolio: p}
	s.valuePortfolio(c, r, nil)
	return r
}

// valuePortfolio sets r's valuation: r's portfolio at the quotes in the
// cache, one read of the cache, never an upstream fetch. Quotes the cache
// cannot give leave their positions unpriced. The quotes are read into
// qs's memory where the cache can (quoteAppender), and returned for
// reuse.
func (s *Server) valuePortfolio(c echo.Context, r *portfolioRead, qs []quotehub.Quote) []quotehub.Quote {
	p := &r.Portfolio
	syms := valuation.Symbols(p.Holdings, p.BaseCurrency)
	qs = qs[:0]
	if len(syms) > 0 {
		var err error
		cache := s.opts.Hub.Options().Cache
		if a, ok := cache.(quoteAppender); ok {
			qs, err = a.AppendMany(c.Request().Context(), qs, syms)
		} else {
			qs, err = cache.GetMany(c.Request().Context(), syms)
		}
		if err != nil {
			s.log.Warn().Err(err).Msg("portfolio valuation: cache read failed; positions unpriced")
		}
	}
	// The quotes stay in their slice, found by their place in syms: a map
	// of them was a third of a valued read's garbage.
	r.Valuation.Revalue(p.Holdings, p.BaseCurrency, valuation.Lookup(syms, qs))
	return qs
}

// quoteAppender is a cache that appends the quotes GetMany would give to
// a slice the caller reuses (store/memory's does).
type quoteAppender interface {
	AppendMany(ctx context.Context, dst []quotehub.Quote, symbols []string) ([]quotehub.Quote, error)
}

// replyPortfolio answers p and its valuation at the cached quotes,
// encoded by hand. The read works in pooled memory (valuedRead): the body
// is copied to the connection's writer, and nothing else of the read
// outlives the reply.
func (s *Server) replyPortfolio(c echo.Context, status int, p quotehub.Portfolio) error {
	w := valuedReads.Get().(*valuedRead)
	defer w.release()
	w.read.Portfolio = p
	w.quotes = s.valuePortfolio(c, &w.read, w.quotes)
	b, err := w.read.appendJSON(w.body[:0])
	if err != nil {
		return quotehub.Errorf(quotehub.EInternal, "the portfolio cannot be valued: %v", err)
	}
	w.body = append(b, '\n')
	return replyBytes(c, status, etag(p.Version), w.body)
}

// valuedRead is the memory of one valued read: the quotes read, the
// valuation (its positions and totals) and the body. Reused through
// valuedReads, a read of 50 holdings allocates about a quarter of the
// bytes it would.
type valuedRead struct {
	read   portfolioRead
	quotes []quotehub.Quote
	body   []byte
}

var valuedReads = sync.Pool{New: func() any { return &valuedRead{body: make([]byte, 0, 16<<10)} }}

// release returns w to the pool, without the portfolio it valued (a
// user's holdings are not kept past their read) and without a body past
// maxPooledBody.
func (w *valuedRead) release() {
	w.read.Portfolio = quotehub.Portfolio{}
	if cap(w.body) > maxPooledBody {
		w.body = nil
	}
	valuedReads.Put(w)
}

const maxPooledBody = 256 << 10

// listsChanged tells every node that a list of user changed, so that
// the sessions following it re-read it. The edit is stored already: a
// bus that fails is logged, not the request's error.
func (s *Server) listsChanged(c echo.Context, user, list string) {
	data, _ := json.Marshal(struct {
		List string `json:"list"`
	}{list})
	s.publishUser(c, quotehub.UserEvent{User: user, Kind: quotehub.UserListsChanged, Data: data})
}

// ListOfEvent returns the list a UserListsChanged event names ("" when
// it names none: every list).
func ListOfEvent(ev quotehub.UserEvent) string {
	var d struct {
		List string `json:"list"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	return d.List
}
