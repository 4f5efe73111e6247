package mysql_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"quotehub"
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
	s := open(t, dsn, quotehub.UserLimits{})
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations has %d rows (%v), want 1", n, err)
	}
	// A database at a version this binary does not know is refused.
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	_, _, err := mysql.Open(context.Background(), dsn, mysql.Pool{}, sqlstore.Options{})
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
