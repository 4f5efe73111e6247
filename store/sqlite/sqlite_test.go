package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/store/storetest"
)

func open(t *testing.T, dir string, lim quotehub.UserLimits) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir, sqlstore.Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestUserStore(t *testing.T) {
	storetest.TestUserStore(t, func(t *testing.T, lim quotehub.UserLimits) quotehub.UserStore {
		return open(t, t.TempDir(), lim)
	})
}

func TestCandleStore(t *testing.T) {
	s := open(t, t.TempDir(), quotehub.UserLimits{})
	storetest.TestCandleStore(t, func(*testing.T) quotehub.CandleStore { return s })
}

// TestCandlesSurviveRestart: closed candles written before a restart are
// read after it.
func TestCandlesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	series := quotehub.CandleSeries{Symbol: "KRW-BTC", Interval: quotehub.Day1}
	c := quotehub.Candle{T: 1_796_083_200_000, Open: 1, High: 2, Low: 0.5, Close: 1.5, V: 10, Closed: true}
	s := open(t, dir, quotehub.UserLimits{})
	if err := s.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: series, Candles: []quotehub.Candle{c}}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = open(t, dir, quotehub.UserLimits{})
	got, err := s.Candles(ctx, series, time.UnixMilli(c.T), time.UnixMilli(c.T+1))
	if err != nil || len(got) != 1 || got[0] != c {
		t.Fatalf("after a restart: %v %v, want %v", got, err, c)
	}
}

// TestRestart closes the store and opens the same directory again: the
// data is still there and the migrations do not run twice.
func TestRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	ctx := context.Background()
	s := open(t, dir, quotehub.UserLimits{})
	w, err := s.CreateWatchlist(ctx, "alice", quotehub.Watchlist{Name: "Tech", Symbols: []string{"AAPL", "KRW-BTC"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddTrade(ctx, "alice", quotehub.Trade{Symbol: "AAPL", Side: quotehub.Buy, Quantity: 2, Price: 10, Currency: "USD"}, quotehub.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
	for range 2 {
		s = open(t, dir, quotehub.UserLimits{})
		got, err := s.Watchlist(ctx, "alice", w.ID)
		if err != nil || got.Name != "Tech" || !slices.Equal(got.Symbols, w.Symbols) || got.Version != 1 {
			t.Fatalf("after a restart: %#v %v", got, err)
		}
		p, err := s.Portfolio(ctx, "alice")
		if err != nil || len(p.Holdings) != 1 || p.Holdings[0].Quantity != 2 {
			t.Fatalf("portfolio after a restart: %#v %v", p, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != storetest.MigrationFiles(t) {
			t.Fatalf("schema_migrations has %d rows (%v), want one per migration, %d", n, err, storetest.MigrationFiles(t))
		}
		var mode string
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode %q (%v), want wal", mode, err)
		}
		db.Close()
	}
}

// TestClosed: a store whose database is gone answers unavailable.
func TestClosed(t *testing.T) {
	s := open(t, t.TempDir(), quotehub.UserLimits{})
	_ = s.Close()
	_, err := s.Watchlists(context.Background(), "alice")
	if quotehub.ErrorCode(err) != quotehub.EUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	if quotehub.ErrorCode(s.Ready(context.Background())) != quotehub.EUnavailable {
		t.Fatal("Ready of a closed store is not unavailable")
	}
}

func BenchmarkUserStore(b *testing.B) {
	s, err := sqlite.Open(context.Background(), b.TempDir(), sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkUserStore(b, s)
}
