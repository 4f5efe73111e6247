package sqlstore

import (
	"context"
	"database/sql"

	"quotehub"
)

// Watchlists are two tables: watchlists (one row each, with the version and
// a per-user creation sequence for ordering) and watchlist_symbols (one
// row per symbol, with its position). Every write changes both in one
// transaction, guarded by the version on the watchlists row.

const selectWatchlists = `SELECT w.id, w.name, w.version, w.created_at, w.updated_at, s.symbol
	FROM watchlists w LEFT JOIN watchlist_symbols s ON s.user_id = w.user_id AND s.watchlist_id = w.id
	WHERE w.user_id = ?`

// scanWatchlists reads the rows of selectWatchlists (one per symbol, or
// one with a NULL symbol for an empty list), grouped by watchlist.
func scanWatchlists(rows *sql.Rows) ([]quotehub.Watchlist, error) {
	defer rows.Close()
	var out []quotehub.Watchlist
	for rows.Next() {
		var w quotehub.Watchlist
		var created, updated int64
		var sym sql.NullString
		if err := rows.Scan(&w.ID, &w.Name, &w.Version, &created, &updated, &sym); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != w.ID {
			w.CreatedAt, w.UpdatedAt, w.Symbols = fromMs(created), fromMs(updated), []string{}
			out = append(out, w)
		}
		if sym.Valid {
			last := &out[len(out)-1]
			last.Symbols = append(last.Symbols, sym.String)
		}
	}
	return out, rows.Err()
}

// Watchlists implements quotehub.UserStore.
func (s *Store) Watchlists(ctx context.Context, user string) ([]quotehub.Watchlist, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, selectWatchlists+` ORDER BY w.seq, s.pos`, user)
	if err != nil {
		return nil, s.fail("watchlists", err)
	}
	out, err := scanWatchlists(rows)
	if out == nil {
		out = []quotehub.Watchlist{}
	}
	return out, s.fail("watchlists", err)
}

// Watchlist implements quotehub.UserStore.
func (s *Store) Watchlist(ctx context.Context, user, id string) (quotehub.Watchlist, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	w, err := s.watchlist(ctx, s.db, user, id)
	return w, s.fail("watchlist", err)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) watchlist(ctx context.Context, q querier, user, id string) (quotehub.Watchlist, error) {
	rows, err := q.QueryContext(ctx, selectWatchlists+` AND w.id = ? ORDER BY s.pos`, user, id)
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	ws, err := scanWatchlists(rows)
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	if len(ws) == 0 {
		return quotehub.Watchlist{}, notFound("watchlist")
	}
	return ws[0], nil
}

// CreateWatchlist implements quotehub.UserStore.
func (s *Store) CreateWatchlist(ctx context.Context, user string, w quotehub.Watchlist) (quotehub.Watchlist, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	name, syms, err := quotehub.CheckWatchlist(w.Name, w.Symbols, s.lim)
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	now := s.now()
	out := quotehub.Watchlist{ID: newID(), Name: name, Symbols: syms, Version: 1, CreatedAt: fromMs(ms(now)), UpdatedAt: fromMs(ms(now))}
	err = s.tx(ctx, "create watchlist", func(tx *sql.Tx) error {
		seq, err := s.bump(ctx, tx, user, "watchlist")
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM watchlists WHERE user_id = ?`, user).Scan(&n); err != nil {
			return err
		}
		if n >= s.lim.MaxWatchlists {
			return quotehub.Errorf(quotehub.EConflict, "You have %d watchlists, the most there may be: delete one first.", n)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO watchlists (user_id, id, name, seq, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`, user, out.ID, name, seq, ms(now), ms(now))
		if s.d.IsDuplicate(err) {
			return quotehub.Errorf(quotehub.EConflict, "You already have a watchlist named %q.", name)
		}
		if err != nil {
			return err
		}
		return s.putSymbols(ctx, tx, user, out.ID, syms)
	})
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	return out, nil
}

// putSymbols writes the symbols of a watchlist that has none stored.
func (s *Store) putSymbols(ctx context.Context, tx *sql.Tx, user, id string, syms []string) error {
	if len(syms) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(syms))
	for i, sym := range syms {
		args = append(args, user, id, i, sym)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO watchlist_symbols (user_id, watchlist_id, pos, symbol) VALUES `+
		placeholders(len(syms), 4), args...)
	return err
}

// UpdateWatchlist implements quotehub.UserStore.
func (s *Store) UpdateWatchlist(ctx context.Context, user, id string, upd quotehub.WatchlistUpdate, ifVersion int64) (quotehub.Watchlist, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.Watchlist{}, err
	}
	var name *string
	var syms []string
	if upd.Name != nil {
		n, _, err := quotehub.CheckWatchlist(*upd.Name, nil, s.lim)
		if err != nil {
			return quotehub.Watchlist{}, err
		}
		name = &n
	}
	if upd.Symbols != nil {
		if syms, err = quotehub.CheckSymbols(*upd.Symbols, s.lim.MaxSymbols); err != nil {
			return quotehub.Watchlist{}, err
		}
	}
	var out quotehub.Watchlist
	err = s.tx(ctx, "update watchlist", func(tx *sql.Tx) error {
		args := []any{ms(s.now())}
		set := ""
		if name != nil {
			set, args = ", name = ?", append(args, *name)
		}
		args = append(args, user, id, ifVersion, ifVersion)
		res, err := tx.ExecContext(ctx, `UPDATE watchlists SET version = version + 1, updated_at = ?`+set+`
			WHERE user_id = ? AND id = ? AND (? < 0 OR version = ?)`, args...)
		if s.d.IsDuplicate(err) {
			return quotehub.Errorf(quotehub.EConflict, "You already have a watchlist named %q.", *name)
		}
		if err != nil {
			return err
		}
		if err := s.guarded(ctx, tx, res, "watchlist", "watchlists", user, id); err != nil {
			return err
		}
		if upd.Symbols != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM watchlist_symbols WHERE user_id = ? AND watchlist_id = ?`, user, id); err != nil {
				return err
			}
			if err := s.putSymbols(ctx, tx, user, id, syms); err != nil {
				return err
			}
		}
		out, err = s.watchlist(ctx, tx, user, id)
		return err
	})
	return out, err
}

// DeleteWatchlist implements quotehub.UserStore.
func (s *Store) DeleteWatchlist(ctx context.Context, user, id string, ifVersion int64) error {
	return s.deleteGuarded(ctx, user, id, ifVersion, "watchlist", "watchlists", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM watchlist_symbols WHERE user_id = ? AND watchlist_id = ?`, user, id)
		return err
	})
}
