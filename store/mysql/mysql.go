// Package mysql is quotehub's UserStore and CandleStore on MySQL or MariaDB
// (github.com/go-sql-driver/mysql), for a cluster of nodes sharing users'
// data. Its queries are shared with the embedded store (store/sqlstore).
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is MySQL's part of the shared store.
var Dialect = func() *sqlstore.Dialect {
	m, _ := fs.Sub(migrations, "migrations")
	return &sqlstore.Dialect{
		Name:       "mysql",
		Migrations: m,
		Bump: `INSERT INTO user_counters (user_id, name, value) VALUES (?, ?, 1)
			ON DUPLICATE KEY UPDATE value = value + 1`,
		KeepExisting:  `ON DUPLICATE KEY UPDATE t = t`,
		Lock:          lock,
		IsDuplicate:   isDuplicate,
		IsUnavailable: isUnavailable,
	}
}()

// Pool sizes the connection pool. Zero values take the defaults.
type Pool struct {
	MaxOpen     int           // connections at most; default 20
	MaxIdle     int           // idle connections kept; default MaxOpen
	MaxLifetime time.Duration // a connection is replaced after this; default 3m
}

// Open connects to the database of dsn (go-sql-driver's DSN format,
// user:pass@tcp(host:port)/db) and applies the migrations. A DSN that does
// not parse is an error; a server that does not answer is not: the store
// is returned, answers unavailable, and migrates when the server is back
// (warn says why at start).
func Open(ctx context.Context, dsn string, pool Pool, opts sqlstore.Options) (s *sqlstore.Store, warn error, err error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("QUOTEHUB_MYSQL_DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, nil, errors.New("QUOTEHUB_MYSQL_DSN names no database (…/dbname)")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second // dial
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(conn)
	if pool.MaxOpen <= 0 {
		pool.MaxOpen = 20
	}
	if pool.MaxIdle <= 0 {
		pool.MaxIdle = pool.MaxOpen
	}
	if pool.MaxLifetime <= 0 {
		pool.MaxLifetime = 3 * time.Minute
	}
	db.SetMaxOpenConns(pool.MaxOpen)
	db.SetMaxIdleConns(pool.MaxIdle)
	db.SetConnMaxLifetime(pool.MaxLifetime)
	s = sqlstore.New(db, Dialect, opts)
	if err := s.Migrate(ctx); err != nil {
		if quotehub.ErrorCode(err) == quotehub.EUnavailable {
			return s, err, nil
		}
		db.Close()
		return nil, nil, err
	}
	return s, nil, nil
}

// lock takes a server-wide named lock for this database's migrations.
func lock(ctx context.Context, conn *sql.Conn) (func(), error) {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(CONCAT('quotehub.migrate.', DATABASE()), 60)`).Scan(&got); err != nil {
		return nil, err
	}
	if got.Int64 != 1 {
		return nil, errors.New("another node held the migration lock for a minute")
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT RELEASE_LOCK(CONCAT('quotehub.migrate.', DATABASE()))`)
	}, nil
}

func number(err error) uint16 {
	var e *mysql.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

func isDuplicate(err error) bool { return number(err) == 1062 }

// isUnavailable: the server is unreachable, went away, or asks to retry
// (lock wait timeout 1205, deadlock 1213, too many connections 1040,
// read-only 1290 during a fail-over).
func isUnavailable(err error) bool {
	switch number(err) {
	case 1040, 1205, 1213, 1290:
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, sql.ErrConnDone) || err != nil && strings.Contains(err.Error(), "sql: database is closed")
}

// SetLogger sends the driver's own log lines (dropped connections) to log.
// The driver has one logger per process.
func SetLogger(log zerolog.Logger) { _ = mysql.SetLogger(driverLogger{log}) }

type driverLogger struct{ log zerolog.Logger }

func (l driverLogger) Print(v ...any) { l.log.Warn().Msg(strings.TrimSpace(fmt.Sprint(v...))) }
