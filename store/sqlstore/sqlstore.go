// Package sqlstore is quotehub's UserStore on database/sql, shared by the
// MySQL/MariaDB and the embedded SQLite stores: the queries where the two
// dialects agree, the migration runner, the mapping of driver errors to
// the domain's codes. Each dialect package supplies its migrations, its
// upsert and lock syntax and its error classification (Dialect).
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"quotehub"
)

// Dialect is what differs between the SQL databases.
type Dialect struct {
	Name string
	// Migrations holds NNNN_name.sql files, applied in order at start.
	Migrations fs.FS
	// Bump is a statement with parameters (user_id, name) that creates the
	// counter row at 1 or adds one to it.
	Bump string
	// KeepExisting ends a multi-row INSERT into candles so that a row
	// whose key is already stored is left as it is (closed candles are
	// immutable), without an error.
	KeepExisting string
	// Lock, if set, takes a lock on conn that keeps other nodes from
	// migrating at the same time, and returns its release.
	Lock func(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
	// IsDuplicate reports a unique-key violation.
	IsDuplicate func(error) bool
	// IsUnavailable reports an error that means the database cannot be
	// reached or is too busy right now (retry later), as opposed to a
	// fault of the query.
	IsUnavailable func(error) bool
}

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	Limits quotehub.UserLimits
	// Timeout bounds every call, all its queries together. Default 3 s.
	Timeout time.Duration
	// Now is the clock of created/updated times. Default time.Now.
	Now func() time.Time
}

// Store implements quotehub.UserStore on a *sql.DB.
type Store struct {
	db   *sql.DB
	d    *Dialect
	lim  quotehub.UserLimits
	tmo  time.Duration
	now  func() time.Time
	sem  chan struct{} // one migration at a time; waiting for it honours the caller's deadline
	done atomic.Bool
}

var _ quotehub.UserStore = (*Store)(nil)

// New returns a store on db. It does not touch the database: the
// migrations run on the first call that needs them (Migrate, Ready or any
// method), so a node whose database is down at start comes up, reports
// not ready, and migrates once the database answers.
func New(db *sql.DB, d *Dialect, opts Options) *Store {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{db: db, d: d, lim: opts.Limits.WithDefaults(), tmo: opts.Timeout, now: opts.Now, sem: make(chan struct{}, 1)}
}

// Migrate applies the migrations this binary has and the database lacks.
// It is idempotent and safe to call from several nodes at once.
func (s *Store) Migrate(ctx context.Context) error {
	if s.done.Load() {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return s.fail("migrate", ctx.Err())
	}
	if s.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(s.tmo, 30*time.Second))
	defer cancel()
	if err := migrate(ctx, s.db, s.d, s.now()); err != nil {
		return s.fail("migrate", err)
	}
	s.done.Store(true)
	return nil
}

// Ready pings the database (and migrates it if that has not happened yet).
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.tmo)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return s.fail("ping", err)
	}
	return s.Migrate(ctx)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// begin starts a call: it bounds ctx by the store's timeout and makes sure
// the schema is there.
func (s *Store) begin(ctx context.Context, user string) (context.Context, context.CancelFunc, error) {
	if err := quotehub.ValidateUser(user); err != nil {
		return ctx, func() {}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.tmo)
	if err := s.Migrate(ctx); err != nil {
		cancel()
		return ctx, func() {}, err
	}
	return ctx, cancel, nil
}

// errUnavailable is what every call answers while the database is away.
var errUnavailable = quotehub.Errorf(quotehub.EUnavailable, "The user-data store is unavailable; retry shortly.")

// fail maps err to the domain: domain errors pass, a database that cannot
// be reached (or a deadline) is EUnavailable, the rest is internal and
// keeps its cause for the log.
func (s *Store) fail(op string, err error) error {
	var de *quotehub.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), s.d.IsUnavailable(err):
		return fmt.Errorf("%s %s: %w: %w", s.d.Name, op, errUnavailable, err)
	default:
		return fmt.Errorf("%s %s: %w", s.d.Name, op, err)
	}
}

// tx runs f in a transaction and commits it; any error rolls everything
// back.
func (s *Store) tx(ctx context.Context, op string, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// bump adds one to the user's counter name and returns its new value. The
// counter's row lock also serialises the user's creations, so that limits
// are counted exactly.
func (s *Store) bump(ctx context.Context, tx *sql.Tx, user, name string) (int64, error) {
	if _, err := tx.ExecContext(ctx, s.d.Bump, user, name); err != nil {
		return 0, err
	}
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT value FROM user_counters WHERE user_id = ? AND name = ?`, user, name).Scan(&v)
	return v, err
}

// newID returns a random resource id: 16 characters of a-z and 2-7.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// newNumericID returns a random id from 1 to 2^53-1: unique across users
// with overwhelming odds (a unique index catches the rest), and exact as a
// JSON number in a browser.
func newNumericID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>11) | 1
}

func ms(t time.Time) int64       { return t.UnixMilli() }
func fromMs(v int64) time.Time   { return time.UnixMilli(v).UTC() }
func notFound(what string) error { return quotehub.Errorf(quotehub.ENotFound, "No such %s.", what) }

func stale(what string, current int64) error {
	return quotehub.Errorf(quotehub.EPreconditionFailed, "The %s changed since (it is now at version %d): read it again.", what, current)
}

// guarded finishes a write guarded by a version ("… AND (? < 0 OR
// version = ?)") on the row of table that user (and id, if not nil) names:
// when the write changed no row, it tells a missing row (ENotFound) from
// a stale version (EPreconditionFailed). Table names are constants.
func (s *Store) guarded(ctx context.Context, tx *sql.Tx, res sql.Result, what, table, user string, id any) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	q, args := `SELECT version FROM `+table+` WHERE user_id = ?`, []any{user}
	if id != nil {
		q, args = q+` AND id = ?`, append(args, id)
	}
	var v int64
	err := tx.QueryRowContext(ctx, q, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what)
	}
	if err != nil {
		return err
	}
	return stale(what, v)
}

// deleteGuarded deletes the row id of the user from table if it is at
// ifVersion, then runs then (deleting what hangs off it), in one
// transaction.
func (s *Store) deleteGuarded(ctx context.Context, user string, id any, ifVersion int64, what, table string, then func(*sql.Tx) error) error {
	ctx, cancel, err := s.begin(ctx, user)
	defer cancel()
	if err != nil {
		return err
	}
	return s.tx(ctx, "delete "+what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = ? AND id = ? AND (? < 0 OR version = ?)`,
			user, id, ifVersion, ifVersion)
		if err != nil {
			return err
		}
		if err := s.guarded(ctx, tx, res, what, table, user, id); err != nil || then == nil {
			return err
		}
		return then(tx)
	})
}

// placeholders returns n groups "(?, ?, …)" of k parameters, comma-separated.
func placeholders(n, k int) string {
	g := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(g+", ", n), ", ")
}
