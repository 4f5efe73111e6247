// Package sqlite is the embedded default of quotehub's UserStore and
// CandleStore: one
// SQLite file under the node's data directory (pure Go, modernc.org/sqlite,
// so the binary stays static), in WAL mode so that reads do not wait for a
// write. It survives restarts, serves one node, and shares its queries
// with the MySQL store (store/sqlstore).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"quotehub/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database's file in the data directory.
const FileName = "users.db"

// Dialect is SQLite's part of the shared store.
var Dialect = func() *sqlstore.Dialect {
	m, _ := fs.Sub(migrations, "migrations")
	return &sqlstore.Dialect{
		Name:       "sqlite",
		Migrations: m,
		Bump: `INSERT INTO user_counters (user_id, name, value) VALUES (?, ?, 1)
			ON CONFLICT (user_id, name) DO UPDATE SET value = value + 1`,
		KeepExisting:  `ON CONFLICT (symbol, iv, t) DO NOTHING`,
		IsDuplicate:   isDuplicate,
		IsUnavailable: isUnavailable,
	}
}()

// Open opens (creating them if needed) the data directory dir, with mode
// 0700, and the database file in it, and applies the migrations.
func Open(ctx context.Context, dir string, opts sqlstore.Options) (*sqlstore.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	// Write transactions take the write lock when they begin (immediate),
	// so two writers queue on the busy timeout instead of failing midway
	// with SQLITE_BUSY when one upgrades its read lock.
	dsn := "file:" + filepath.Join(dir, FileName) + fmt.Sprintf(
		"?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		timeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := sqlstore.New(db, Dialect, opts)
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func isDuplicate(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isUnavailable(err error) bool {
	switch code(err) & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return errors.Is(err, sql.ErrConnDone) || err != nil && strings.Contains(err.Error(), "sql: database is closed")
}
