package mysql_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/store/mysql"
	"quotehub/store/mysql/mysqltest"
	"quotehub/store/sqlstore"
	"quotehub/store/storetest"
)

func open(t *testing.T, dsn string, lim quotehub.UserLimits) *sqlstore.Store {
	t.Helper()
	s, warn, err := mysql.Open(context.Background(), dsn, mysql.Pool{MaxOpen: 8}, sqlstore.Options{Limits: lim})
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestUserStore(t *testing.T) {
	storetest.TestUserStore(t, func(t *testing.T, lim quotehub.UserLimits) quotehub.UserStore {
		return open(t, mysqltest.DSN(t, "mysql"), lim)
	})
}

func TestCandleStore(t *testing.T) {
	s := open(t, mysqltest.DSN(t, "candles"), quotehub.UserLimits{})
	storetest.TestCandleStore(t, func(*testing.T) quotehub.CandleStore { return s })
}

// TestMigrations: nodes that start together against one database apply
// each migration once, and starting again changes nothing.
func TestMigrations(t *testing.T) {
	dsn := mysqltest.DSN(t, "migrate")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			s, warn, err := mysql.Open(context.Background(), dsn, mysql.Pool{}, sqlstore.Options{})
			if err != nil || warn != nil {
				t.Error(err, warn)
				return
			}
			_ = s.Close()
		})
	}
	wg.Wait()
	open(t, dsn, quotehub.UserLimits{})
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != storetest.MigrationFiles(t) {
		t.Fatalf("schema_migrations has %d rows (%v), want one per migration, %d", n, err, storetest.MigrationFiles(t))
	}
	var tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&tables); err != nil || tables != 10 {
		t.Fatalf("%d tables (%v), want 10", tables, err)
	}
	// A database at a version this binary does not know is refused.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	_, _, err = mysql.Open(context.Background(), dsn, mysql.Pool{}, sqlstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

// TestDown: a server that does not answer is not fatal at start; every
// call answers unavailable, within the store timeout.
func TestDown(t *testing.T) {
	s, warn, err := mysql.Open(context.Background(), "root@tcp(127.0.0.1:1)/quotehub?timeout=200ms", mysql.Pool{},
		sqlstore.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if quotehub.ErrorCode(warn) != quotehub.EUnavailable {
		t.Errorf("warning at start: %v, want unavailable", warn)
	}
	_, err = s.CreateWatchlist(context.Background(), "alice", quotehub.Watchlist{Name: "L"})
	if quotehub.ErrorCode(err) != quotehub.EUnavailable {
		t.Errorf("CreateWatchlist: %v, want unavailable", err)
	}
	if quotehub.ErrorCode(s.Ready(context.Background())) != quotehub.EUnavailable {
		t.Error("Ready is not unavailable")
	}
}

func TestBadDSN(t *testing.T) {
	for _, dsn := range []string{"not a dsn", "root@tcp(127.0.0.1:3306)/"} {
		if _, _, err := mysql.Open(context.Background(), dsn, mysql.Pool{}, sqlstore.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

// TestReconnect: while the server is away every call answers unavailable
// and writes nothing; when it is back the same store serves again by
// itself.
func TestReconnect(t *testing.T) {
	cfg, err := gomysql.ParseDSN(mysqltest.DSN(t, "reconnect"))
	if err != nil {
		t.Fatal(err)
	}
	p := mysqltest.NewProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	cfg.Timeout = 300 * time.Millisecond
	s, warn, err := mysql.Open(context.Background(), cfg.FormatDSN(), mysql.Pool{MaxOpen: 4}, sqlstore.Options{Timeout: time.Second})
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	defer s.Close()
	ctx := context.Background()
	w, err := s.CreateWatchlist(ctx, "alice", quotehub.Watchlist{Name: "Before", Symbols: []string{"A1"}})
	if err != nil {
		t.Fatal(err)
	}

	p.Down()
	if _, err := s.CreateWatchlist(ctx, "alice", quotehub.Watchlist{Name: "During", Symbols: []string{"A1", "A2"}}); quotehub.ErrorCode(err) != quotehub.EUnavailable {
		t.Fatalf("CreateWatchlist while down: %v, want unavailable", err)
	}
	if _, err := s.UpdateWatchlist(ctx, "alice", w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"B1"}}, 1); quotehub.ErrorCode(err) != quotehub.EUnavailable {
		t.Fatalf("UpdateWatchlist while down: %v, want unavailable", err)
	}
	if quotehub.ErrorCode(s.Ready(ctx)) != quotehub.EUnavailable {
		t.Fatal("Ready while down is not unavailable")
	}

	p.Up()
	poll.Until(t, 5*time.Second, "the store to answer again", func() bool { return s.Ready(ctx) == nil })
	ws, err := s.Watchlists(ctx, "alice")
	if err != nil || len(ws) != 1 || ws[0].Version != 1 || ws[0].Symbols[0] != "A1" {
		t.Fatalf("after the server came back: %#v %v (the writes made while it was away must not exist)", ws, err)
	}
	if _, err := s.UpdateWatchlist(ctx, "alice", w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"B1"}}, 1); err != nil {
		t.Fatal(err)
	}
}

// TestDeadlineMidTransaction: a write whose second statement waits on a
// lock past the store timeout is rolled back whole: the version bump its
// first statement made is gone with it.
func TestDeadlineMidTransaction(t *testing.T) {
	dsn := mysqltest.DSN(t, "deadline")
	s, warn, err := mysql.Open(context.Background(), dsn, mysql.Pool{}, sqlstore.Options{Timeout: 300 * time.Millisecond})
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	defer s.Close()
	ctx := context.Background()
	w, err := s.CreateWatchlist(ctx, "alice", quotehub.Watchlist{Name: "L", Symbols: []string{"A1", "A2"}})
	if err != nil {
		t.Fatal(err)
	}
	// Another client holds the list's symbol rows.
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT * FROM watchlist_symbols WHERE user_id = 'alice' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	_, err = s.UpdateWatchlist(ctx, "alice", w.ID, quotehub.WatchlistUpdate{Name: ptr("M"), Symbols: &[]string{"B1"}}, 1)
	if quotehub.ErrorCode(err) != quotehub.EUnavailable {
		t.Fatalf("UpdateWatchlist behind a held lock: %v, want unavailable", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Watchlist(ctx, "alice", w.ID)
	if err != nil || got.Version != 1 || got.Name != "L" || !slices.Equal(got.Symbols, []string{"A1", "A2"}) {
		t.Fatalf("after the timed-out write: %#v %v, want it unchanged", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

func BenchmarkUserStore(b *testing.B) {
	s, warn, err := mysql.Open(context.Background(), mysqltest.DSN(b, "bench"), mysql.Pool{}, sqlstore.Options{})
	if err != nil || warn != nil {
		b.Fatal(err, warn)
	}
	defer s.Close()
	storetest.BenchmarkUserStore(b, s)
}
