package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"quotehub"
)

// A portfolio is a row of portfolios (base currency, version) and its rows
// of holdings (with their position). Writes lock the portfolios row first
// (the version bump), so two writers of one portfolio take turns.

// Portfolio implements quotehub.UserStore.
func (s *Store) Portfolio(ctx context.Context, user string) (quotehub.Portfolio, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Portfolio{}, err
	}
	p, err := s.portfolio(ctx, s.db, user)
	return p, s.fail("portfolio", err)
}

func (s *Store) portfolio(ctx context.Context, q querier, user string) (quotehub.Portfolio, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.base_currency, p.version, p.updated_at, h.symbol, h.quantity, h.avg_cost, h.currency
		FROM portfolios p LEFT JOIN holdings h ON h.user_id = p.user_id
		WHERE p.user_id = ? ORDER BY h.pos`, user)
	if err != nil {
		return quotehub.Portfolio{}, err
	}
	defer rows.Close()
	p := quotehub.Portfolio{BaseCurrency: quotehub.DefaultBaseCurrency, Holdings: []quotehub.Holding{}}
	for rows.Next() {
		var updated int64
		var sym, cur sql.NullString
		var qty, cost sql.NullFloat64
		if err := rows.Scan(&p.BaseCurrency, &p.Version, &updated, &sym, &qty, &cost, &cur); err != nil {
			return quotehub.Portfolio{}, err
		}
		if updated > 0 {
			p.UpdatedAt = fromMs(updated)
		}
		if sym.Valid {
			p.Holdings = append(p.Holdings, quotehub.Holding{Symbol: sym.String, Quantity: qty.Float64, AvgCost: cost.Float64, Currency: cur.String})
		}
	}
	return p, rows.Err()
}

// ensurePortfolio creates the user's portfolios row at version 0 if it is
// missing, on its own (outside the write's transaction), so that every
// write can lock an existing row with its guarded UPDATE.
func (s *Store) ensurePortfolio(ctx context.Context, user string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO portfolios (user_id, base_currency, version, updated_at) VALUES (?, ?, 0, 0)`,
		user, quotehub.DefaultBaseCurrency)
	if err != nil && !s.d.IsDuplicate(err) {
		return s.fail("portfolio", err)
	}
	return nil
}

// lockPortfolio bumps the version of the user's portfolio if it is at
// ifVersion (or any, for AnyVersion), which locks the row until the
// transaction ends, and sets its base currency when base is not empty.
func (s *Store) lockPortfolio(ctx context.Context, tx *sql.Tx, user, base string, ifVersion int64) error {
	args := []any{ms(s.now())}
	set := ""
	if base != "" {
		set, args = ", base_currency = ?", append(args, base)
	}
	args = append(args, user, ifVersion, ifVersion)
	res, err := tx.ExecContext(ctx, `UPDATE portfolios SET version = version + 1, updated_at = ?`+set+`
		WHERE user_id = ? AND (? < 0 OR version = ?)`, args...)
	if err != nil {
		return err
	}
	return s.guarded(ctx, tx, res, "portfolio", "portfolios", user, nil)
}

// putHoldings replaces every holding of the user.
func (s *Store) putHoldings(ctx context.Context, tx *sql.Tx, user string, hs []quotehub.Holding) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM holdings WHERE user_id = ?`, user); err != nil {
		return err
	}
	if len(hs) == 0 {
		return nil
	}
	args := make([]any, 0, 6*len(hs))
	for i, h := range hs {
		args = append(args, user, h.Symbol, i, h.Quantity, h.AvgCost, h.Currency)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO holdings (user_id, symbol, pos, quantity, avg_cost, currency) VALUES `+
		placeholders(len(hs), 6), args...)
	return err
}

// PutPortfolio implements quotehub.UserStore.
func (s *Store) PutPortfolio(ctx context.Context, user string, p quotehub.Portfolio, ifVersion int64) (quotehub.Portfolio, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Portfolio{}, err
	}
	if p, err = quotehub.CheckPortfolio(p, s.lim); err != nil {
		return quotehub.Portfolio{}, err
	}
	if err := s.ensurePortfolio(ctx, user); err != nil {
		return quotehub.Portfolio{}, err
	}
	var out quotehub.Portfolio
	err = s.tx(ctx, "put portfolio", func(tx *sql.Tx) error {
		if err := s.lockPortfolio(ctx, tx, user, p.BaseCurrency, ifVersion); err != nil {
			return err
		}
		if err := s.putHoldings(ctx, tx, user, p.Holdings); err != nil {
			return err
		}
		out, err = s.portfolio(ctx, tx, user)
		return err
	})
	return out, err
}

// AddTrade implements quotehub.UserStore.
func (s *Store) AddTrade(ctx context.Context, user string, t quotehub.Trade, ifVersion int64) (quotehub.Portfolio, quotehub.Trade, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Portfolio{}, quotehub.Trade{}, err
	}
	if t, err = quotehub.CheckTrade(t); err != nil {
		return quotehub.Portfolio{}, quotehub.Trade{}, err
	}
	if t.Time.IsZero() {
		t.Time = s.now()
	}
	t.Time = fromMs(ms(t.Time))
	if err := s.ensurePortfolio(ctx, user); err != nil {
		return quotehub.Portfolio{}, quotehub.Trade{}, err
	}
	var out quotehub.Portfolio
	err = s.tx(ctx, "add trade", func(tx *sql.Tx) error {
		if err := s.lockPortfolio(ctx, tx, user, "", ifVersion); err != nil {
			return err
		}
		cur, err := s.portfolio(ctx, tx, user)
		if err != nil {
			return err
		}
		hs, err := quotehub.ApplyTrade(cur.Holdings, t, s.lim)
		if err != nil {
			return err
		}
		if err := s.putHoldings(ctx, tx, user, hs); err != nil {
			return err
		}
		if t.ID, err = s.bump(ctx, tx, user, "trade"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO trades (user_id, id, symbol, side, quantity, price, currency, traded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, user, t.ID, t.Symbol, t.Side, t.Quantity, t.Price, t.Currency, ms(t.Time)); err != nil {
			return err
		}
		out, err = s.portfolio(ctx, tx, user)
		return err
	})
	if err != nil {
		return quotehub.Portfolio{}, quotehub.Trade{}, err
	}
	return out, t, nil
}

// Trades implements quotehub.UserStore.
func (s *Store) Trades(ctx context.Context, user string, limit int) ([]quotehub.Trade, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, errors.New("sqlstore: Trades needs a positive limit")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, symbol, side, quantity, price, currency, traded_at FROM trades
		WHERE user_id = ? ORDER BY id DESC LIMIT ?`, user, limit)
	if err != nil {
		return nil, s.fail("trades", err)
	}
	defer rows.Close()
	out := []quotehub.Trade{}
	for rows.Next() {
		var t quotehub.Trade
		var at int64
		if err := rows.Scan(&t.ID, &t.Symbol, &t.Side, &t.Quantity, &t.Price, &t.Currency, &at); err != nil {
			return nil, s.fail("trades", err)
		}
		t.Time = fromMs(at)
		out = append(out, t)
	}
	return out, s.fail("trades", rows.Err())
}
