package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"quotehub"
)

const selectRules = `SELECT user_id, id, symbol, kind, threshold, rearm, enabled, version, created_at, updated_at FROM alert_rules`

func scanRules(rows *sql.Rows) ([]quotehub.AlertRule, error) {
	defer rows.Close()
	out := []quotehub.AlertRule{}
	for rows.Next() {
		var r quotehub.AlertRule
		var created, updated int64
		if err := rows.Scan(&r.UserID, &r.ID, &r.Symbol, &r.Kind, &r.Threshold, &r.Rearm, &r.Enabled, &r.Version, &created, &updated); err != nil {
			return nil, err
		}
		r.CreatedAt, r.UpdatedAt = fromMs(created), fromMs(updated)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AlertRules implements quotehub.UserStore.
func (s *Store) AlertRules(ctx context.Context, user string) ([]quotehub.AlertRule, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, selectRules+` WHERE user_id = ? ORDER BY seq`, user)
	if err != nil {
		return nil, s.fail("alert rules", err)
	}
	rs, err := scanRules(rows)
	return rs, s.fail("alert rules", err)
}

// AlertRule implements quotehub.UserStore.
func (s *Store) AlertRule(ctx context.Context, user string, id int64) (quotehub.AlertRule, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	r, err := s.rule(ctx, s.db, user, id)
	return r, s.fail("alert rule", err)
}

func (s *Store) rule(ctx context.Context, q querier, user string, id int64) (quotehub.AlertRule, error) {
	rows, err := q.QueryContext(ctx, selectRules+` WHERE user_id = ? AND id = ?`, user, id)
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	rs, err := scanRules(rows)
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	if len(rs) == 0 {
		return quotehub.AlertRule{}, notFound("alert rule")
	}
	return rs[0], nil
}

// CreateAlertRule implements quotehub.UserStore.
func (s *Store) CreateAlertRule(ctx context.Context, user string, r quotehub.AlertRule) (quotehub.AlertRule, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	if r, err = quotehub.CheckAlertRule(r); err != nil {
		return quotehub.AlertRule{}, err
	}
	now := fromMs(ms(s.now()))
	r.UserID, r.Version, r.CreatedAt, r.UpdatedAt = user, 1, now, now
	err = s.tx(ctx, "create alert rule", func(tx *sql.Tx) error {
		seq, err := s.bump(ctx, tx, user, "alert_rule")
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM alert_rules WHERE user_id = ?`, user).Scan(&n); err != nil {
			return err
		}
		if n >= s.lim.MaxAlertRules {
			return quotehub.Errorf(quotehub.EConflict, "You have %d alert rules, the most there may be: delete one first.", n)
		}
		// A failed statement leaves the transaction usable: on the (rare)
		// id that another rule has, draw again.
		for try := 0; ; try++ {
			r.ID = newNumericID()
			_, err = tx.ExecContext(ctx, `INSERT INTO alert_rules (user_id, id, seq, symbol, kind, threshold, rearm, enabled, version, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, user, r.ID, seq, r.Symbol, r.Kind, r.Threshold, r.Rearm, r.Enabled, ms(now), ms(now))
			if !s.d.IsDuplicate(err) || try == 3 {
				return err
			}
		}
	})
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	return r, nil
}

// UpdateAlertRule implements quotehub.UserStore.
func (s *Store) UpdateAlertRule(ctx context.Context, user string, id int64, upd quotehub.AlertRuleUpdate, ifVersion int64) (quotehub.AlertRule, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.AlertRule{}, err
	}
	var out quotehub.AlertRule
	err = s.tx(ctx, "update alert rule", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alert_rules SET version = version + 1, updated_at = ?
			WHERE user_id = ? AND id = ? AND (? < 0 OR version = ?)`, ms(s.now()), user, id, ifVersion, ifVersion)
		if err != nil {
			return err
		}
		if err := s.guarded(ctx, tx, res, "alert rule", "alert_rules", user, id); err != nil {
			return err
		}
		cur, err := s.rule(ctx, tx, user, id)
		if err != nil {
			return err
		}
		if out, err = quotehub.CheckAlertRule(upd.Apply(cur)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE alert_rules SET symbol = ?, kind = ?, threshold = ?, rearm = ?, enabled = ?
			WHERE user_id = ? AND id = ?`, out.Symbol, out.Kind, out.Threshold, out.Rearm, out.Enabled, user, id)
		return err
	})
	return out, err
}

// DeleteAlertRule implements quotehub.UserStore.
func (s *Store) DeleteAlertRule(ctx context.Context, user string, id int64, ifVersion int64) error {
	return s.deleteGuarded(ctx, user, id, ifVersion, "alert rule", "alert_rules", nil)
}

// EnabledAlertRules implements quotehub.UserStore.
func (s *Store) EnabledAlertRules(ctx context.Context, afterID int64, limit int) ([]quotehub.AlertRule, error) {
	if limit <= 0 {
		return nil, errors.New("sqlstore: EnabledAlertRules needs a positive limit")
	}
	ctx, cancel := context.WithTimeout(ctx, s.tmo)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, selectRules+` WHERE enabled = ? AND id > ? ORDER BY id LIMIT ?`, true, afterID, limit)
	if err != nil {
		return nil, s.fail("enabled alert rules", err)
	}
	rs, err := scanRules(rows)
	return rs, s.fail("enabled alert rules", err)
}

// AppendFiredAlert implements quotehub.UserStore.
func (s *Store) AppendFiredAlert(ctx context.Context, user string, a quotehub.FiredAlert) (quotehub.FiredAlert, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return quotehub.FiredAlert{}, err
	}
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	a.Time = fromMs(ms(a.Time))
	err = s.tx(ctx, "append fired alert", func(tx *sql.Tx) error {
		if a.ID, err = s.bump(ctx, tx, user, "fired_alert"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fired_alerts (user_id, id, rule_id, symbol, kind, threshold, price, fired_at, direction, prev_close)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, user, a.ID, a.RuleID, a.Symbol, a.Kind, a.Threshold, a.Price, ms(a.Time),
			a.Direction, a.PrevClose); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM fired_alerts WHERE user_id = ? AND id <= ?`, user, a.ID-int64(s.lim.FiredWindow))
		return err
	})
	if err != nil {
		return quotehub.FiredAlert{}, err
	}
	return a, nil
}

// FiredAlerts implements quotehub.UserStore.
func (s *Store) FiredAlerts(ctx context.Context, user string, afterID int64, limit int) ([]quotehub.FiredAlert, error) {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > s.lim.FiredWindow {
		limit = s.lim.FiredWindow
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, rule_id, symbol, kind, threshold, price, fired_at, direction, prev_close FROM fired_alerts
		WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?`, user, afterID, limit)
	if err != nil {
		return nil, s.fail("fired alerts", err)
	}
	defer rows.Close()
	out := []quotehub.FiredAlert{}
	for rows.Next() {
		var a quotehub.FiredAlert
		var at int64
		if err := rows.Scan(&a.ID, &a.RuleID, &a.Symbol, &a.Kind, &a.Threshold, &a.Price, &at, &a.Direction, &a.PrevClose); err != nil {
			return nil, s.fail("fired alerts", err)
		}
		a.Time = fromMs(at)
		out = append(out, a)
	}
	return out, s.fail("fired alerts", rows.Err())
}
