package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own response types are marshalled here
	}
	return b
}

// getQuote answers GET /v1/quotes/{symbol}.
func (s *Server) getQuote(c echo.Context) error {
	sym, err := symbolParam(c)
	if err != nil {
		return s.writeError(c, err)
	}
	ctx := c.Request().Context()
	if err := s.known(c, sym); err != nil {
		return s.writeError(c, err)
	}
	rd, err := s.opts.Reader.Read(ctx, sym)
	if err != nil {
		return s.writeError(c, err)
	}
	h := c.Response().Header()
	h.Set("X-Cache", rd.Result)
	h.Set("Cache-Control", "max-age="+strconv.Itoa(int(rd.MaxAge.Seconds())))
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	_, err = c.Response().Write(rd.Quote.AppendReadJSON(make([]byte, 0, 320), rd.Result == quotehub.CacheStale, rd.Age.Milliseconds()))
	return err
}

// symbolParam returns the normalised symbol of the route's :symbol.
func symbolParam(c echo.Context) (string, error) {
	raw, err := url.PathUnescape(c.Param("symbol"))
	if err != nil {
		raw = c.Param("symbol")
	}
	return quotehub.NormalizeSymbol(raw)
}

// known checks that a well-formed symbol is in the catalogue.
func (s *Server) known(c echo.Context, sym string) error {
	_, ok, err := s.opts.Catalog.Lookup(c.Request().Context(), sym)
	switch {
	case err != nil:
		return err
	case !ok:
		return quotehub.Errorf(quotehub.EUnknownSymbol, "%s is not in the catalogue", sym)
	}
	return nil
}

// batchWorkers bounds the concurrent reads of one batch request, so that
// misses wait for the upstream in parallel without a goroutine per symbol.
const batchWorkers = 16

// getQuotes answers GET /v1/quotes?symbols=A,B,C: every symbol is read at
// once (misses wait in parallel), and failures are listed per symbol.
func (s *Server) getQuotes(c echo.Context) error {
	names := quotehub.NormalizeList(quotehub.SplitList(c.QueryParam("symbols")))
	if len(names) == 0 {
		return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "symbols is missing or empty: /v1/quotes?symbols=A,B"))
	}
	if len(names) > s.opts.MaxBatch {
		return s.writeError(c, quotehub.Errorf(quotehub.ETooManySymbols, "%d symbols requested; at most %d per request", len(names), s.opts.MaxBatch))
	}
	ctx := c.Request().Context()
	type result struct {
		rd  quotehub.Reading
		err error
	}
	results := make([]result, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, batchWorkers)
	for i, n := range names {
		if n.Err != nil {
			results[i].err = n.Err
			continue
		}
		if err := s.known(c, n.Symbol); err != nil {
			results[i].err = err
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i].rd, results[i].err = s.opts.Reader.Read(ctx, n.Symbol)
		}()
	}
	wg.Wait()
	b := append(make([]byte, 0, 256*len(names)), `{"quotes":[`...)
	first := true
	var errs []hub.Rejection
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, hub.NewRejection(names[i].Symbol, r.err))
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = r.rd.Quote.AppendReadJSON(b, r.rd.Result == quotehub.CacheStale, r.rd.Age.Milliseconds())
	}
	b = append(b, `],"errors":`...)
	if errs == nil {
		errs = []hub.Rejection{}
	}
	b = append(b, mustJSON(errs)...)
	b = append(b, '}')
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// getSymbols answers GET /v1/symbols?q=&limit=.
func (s *Server) getSymbols(c echo.Context) error {
	limit := 20
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "limit must be an integer"))
		}
		limit = min(max(n, 1), 100)
	}
	found, err := s.opts.Catalog.Search(c.Request().Context(), c.QueryParam("q"), limit)
	if err != nil {
		return s.writeError(c, err)
	}
	if found == nil {
		found = []quotehub.SymbolInfo{}
	}
	return c.JSON(http.StatusOK, map[string]any{"symbols": found})
}
