package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// CandleReader answers candle reads (history.Service).
type CandleReader interface {
	Chart(ctx context.Context, q quotehub.CandleQuery) (quotehub.CandleChart, error)
}

// chartEncoder is an optional capability of a CandleReader that answers
// with the encoded chart, which it may keep (history.Service keeps those
// of closed ranges, so a warm read is a copy).
type chartEncoder interface {
	ChartJSON(ctx context.Context, q quotehub.CandleQuery) ([]byte, error)
}

// chartJSON appends the encoded chart of q to b.
func (s *Server) chartJSON(ctx context.Context, b []byte, q quotehub.CandleQuery) ([]byte, error) {
	if enc, ok := s.opts.Candles.(chartEncoder); ok {
		j, err := enc.ChartJSON(ctx, q)
		return append(b, j...), err
	}
	ch, err := s.opts.Candles.Chart(ctx, q)
	if err != nil {
		return b, err
	}
	return ch.AppendJSON(b), nil
}

// maxCandleBatch is the most symbols of one batch candle read.
const maxCandleBatch = 20

// candleQuery parses the query parameters shared by the single and batch
// candle reads: interval (required), count, from, to (Unix ms), ma, ema.
func candleQuery(c echo.Context) (quotehub.CandleQuery, error) {
	var q quotehub.CandleQuery
	p := c.QueryParams()
	iv := p.Get("interval")
	if iv == "" {
		return q, quotehub.Errorf(quotehub.EBadRequest, "interval is missing: one of 1m, 5m, 15m, 1h, 1d, 1w, 1M")
	}
	var err error
	if q.Interval, err = quotehub.ParseInterval(iv); err != nil {
		return q, err
	}
	if s := p.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > quotehub.MaxCandles {
			return q, quotehub.Errorf(quotehub.EBadRequest, "count must be an integer from 1 to %d, got %q", quotehub.MaxCandles, s)
		}
		q.Count = n
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := p.Get(f.name)
		if s == "" {
			continue
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return q, quotehub.Errorf(quotehub.EBadRequest, "%s must be Unix milliseconds, got %q", f.name, s)
		}
		*f.dst = time.UnixMilli(ms)
	}
	for _, f := range []struct {
		name string
		dst  *[]int
	}{{"ma", &q.MA}, {"ema", &q.EMA}} {
		s := p.Get(f.name)
		if s == "" {
			continue
		}
		seen := map[int]bool{}
		for _, part := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil || n < 1 || n > quotehub.MaxAverageN {
				return q, quotehub.Errorf(quotehub.EBadRequest, "%s takes window lengths from 1 to %d, got %q", f.name, quotehub.MaxAverageN, part)
			}
			if !seen[n] {
				seen[n] = true
				*f.dst = append(*f.dst, n)
			}
		}
	}
	return q, nil
}

// getCandles answers GET /v1/candles/{symbol}.
func (s *Server) getCandles(c echo.Context) error {
	if s.opts.Candles == nil {
		return s.writeError(c, quotehub.Errorf(quotehub.ENotFound, "this node serves no candles"))
	}
	sym, err := symbolParam(c)
	if err != nil {
		return s.writeError(c, err)
	}
	q, err := candleQuery(c)
	if err != nil {
		return s.writeError(c, err)
	}
	q.Symbol = sym
	if enc, ok := s.opts.Candles.(chartEncoder); ok {
		b, err := enc.ChartJSON(c.Request().Context(), q)
		if err != nil {
			return s.writeError(c, err)
		}
		return blob(c, b)
	}
	ch, err := s.opts.Candles.Chart(c.Request().Context(), q)
	if err != nil {
		return s.writeError(c, err)
	}
	return blob(c, ch.AppendJSON(make([]byte, 0, 64+100*len(ch.Candles))))
}

// getCandleBatch answers GET /v1/candles?symbols=A,B&interval=…: one chart
// per symbol, the same parameters for all, failures listed per symbol.
func (s *Server) getCandleBatch(c echo.Context) error {
	if s.opts.Candles == nil {
		return s.writeError(c, quotehub.Errorf(quotehub.ENotFound, "this node serves no candles"))
	}
	names := quotehub.NormalizeList(quotehub.SplitList(c.QueryParam("symbols")))
	if len(names) == 0 {
		return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "symbols is missing or empty: /v1/candles?symbols=A,B&interval=1d"))
	}
	if len(names) > maxCandleBatch {
		return s.writeError(c, quotehub.Errorf(quotehub.ETooManySymbols, "%d symbols requested; at most %d per candle request", len(names), maxCandleBatch))
	}
	q, err := candleQuery(c)
	if err != nil {
		return s.writeError(c, err)
	}
	charts := make([][]byte, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		if n.Err != nil {
			errs[i] = n.Err
			continue
		}
		wg.Go(func() {
			q := q
			q.Symbol = n.Symbol
			charts[i], errs[i] = s.chartJSON(c.Request().Context(), nil, q)
		})
	}
	wg.Wait()
	b := append(make([]byte, 0, 4096), `{"charts":[`...)
	first := true
	rejected := []hub.Rejection{}
	for i := range names {
		if errs[i] != nil {
			rejected = append(rejected, hub.NewRejection(names[i].Symbol, errs[i]))
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, charts[i]...)
	}
	b = append(b, `],"errors":`...)
	b = append(b, mustJSON(rejected)...)
	b = append(b, '}')
	return blob(c, b)
}

// blob answers 200 with a JSON body of known length: a chart is larger
// than net/http buffers, and without a length it would go out chunked.
func blob(c echo.Context, b []byte) error {
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// candleParam reads the candles= parameter of a stream (SSE, and a
// WebSocket's subscribe at connect): nil when absent.
func candleParam(p url.Values) ([]quotehub.Interval, error) {
	if !p.Has("candles") {
		return nil, nil
	}
	return hub.ParseIntervals(quotehub.SplitList(p.Get("candles")))
}

// subscribeAtConnect is a WebSocket's subscribe of ?symbols= (and
// ?candles=) at connect.
func subscribeAtConnect(ctx context.Context, client *hub.Client, p url.Values) error {
	symbols := quotehub.SplitList(p.Get("symbols"))
	ivs, err := candleParam(p)
	if err != nil || ivs == nil {
		if err != nil {
			return err
		}
		return client.Subscribe(ctx, nil, symbols)
	}
	return client.SubscribeCandles(ctx, nil, symbols, ivs)
}
