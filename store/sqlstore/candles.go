package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"quotehub"
)

var _ quotehub.CandleStore = (*Store)(nil)

// candleRows is how many candles one INSERT carries: 8 parameters each,
// well under both SQLite's and MySQL's limits on a statement's parameters.
const candleRows = 500

// PutCandles implements quotehub.CandleStore: multi-row inserts that keep
// a stored (symbol, interval, start) as it is (Dialect.KeepExisting), all
// of one call in one transaction, so a failed write stores nothing.
func (s *Store) PutCandles(ctx context.Context, batches []quotehub.CandleBatch) error {
	var rows []any
	for _, b := range batches {
		if !b.Interval.Valid() {
			return quotehub.Errorf(quotehub.EBadRequest, "candles of %s: invalid interval", b.Symbol)
		}
		if n, err := quotehub.NormalizeSymbol(b.Symbol); err != nil || n != b.Symbol {
			return quotehub.Errorf(quotehub.EBadRequest, "candles of %q: not a normalised symbol", b.Symbol)
		}
		iv := b.Interval.String()
		for _, c := range b.Candles {
			if !c.Closed {
				return quotehub.Errorf(quotehub.EBadRequest, "candle %s at %d is not closed", b.CandleSeries, c.T)
			}
			rows = append(rows, b.Symbol, iv, c.T, c.Open, c.High, c.Low, c.Close, c.V)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel, err := s.beginShared(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return s.tx(ctx, "put candles", func(tx *sql.Tx) error {
		for len(rows) > 0 {
			n := min(len(rows)/8, candleRows)
			q := `INSERT INTO candles (symbol, iv, t, o, h, l, c, v) VALUES ` + placeholders(n, 8) + ` ` + s.d.KeepExisting
			if _, err := tx.ExecContext(ctx, q, rows[:n*8]...); err != nil {
				return err
			}
			rows = rows[n*8:]
		}
		return nil
	})
}

// Candles implements quotehub.CandleStore.
func (s *Store) Candles(ctx context.Context, series quotehub.CandleSeries, from, to time.Time) ([]quotehub.Candle, error) {
	ctx, cancel, err := s.beginShared(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	rs, err := s.db.QueryContext(ctx, `SELECT t, o, h, l, c, v FROM candles WHERE symbol = ? AND iv = ? AND t >= ? AND t < ? ORDER BY t`,
		series.Symbol, series.Interval.String(), from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, s.fail("candles", err)
	}
	defer rs.Close()
	var out []quotehub.Candle
	for rs.Next() {
		c := quotehub.Candle{Closed: true}
		if err := rs.Scan(&c.T, &c.Open, &c.High, &c.Low, &c.Close, &c.V); err != nil {
			return nil, s.fail("candles", err)
		}
		out = append(out, c)
	}
	return out, s.fail("candles", rs.Err())
}

// beginShared starts a call on data that belongs to no user: it bounds ctx
// by the store's timeout and makes sure the schema is there.
func (s *Store) beginShared(ctx context.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.tmo)
	if err := s.Migrate(ctx); err != nil {
		cancel()
		return ctx, func() {}, err
	}
	return ctx, cancel, nil
}
