package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"quotehub"
	"quotehub/store/mysql/mysqltest"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
)

type readiness struct {
	Ready   bool
	Reasons []string
}

// TestUsersEmbedded: without a DSN the node keeps users' data in a file
// of the data directory (store/sqlite's TestRestart shows it outlives the
// store), and /readyz reports the store.
func TestUsersEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, map[string]string{"QUOTEHUB_DATA_DIR": dir})
	var r readiness
	if resp := getJSON(t, n.url("/readyz"), &r); resp.StatusCode != 200 || !r.Ready {
		t.Fatalf("/readyz = %d %+v", resp.StatusCode, r)
	}
	w, err := n.users.CreateWatchlist(context.Background(), "alice", quotehub.Watchlist{Name: "Tech", Symbols: []string{"AAPL"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Fatal(err)
	}
	// The file holds it: another handle on the directory reads it back.
	other, err := sqlite.Open(context.Background(), dir, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got, err := other.Watchlist(context.Background(), "alice", w.ID); err != nil || got.Name != "Tech" {
		t.Fatalf("read from the file: %+v %v", got, err)
	}
}

// TestUsersMySQL: a DSN switches users' data to MySQL; a server that does
// not answer leaves the node up but not ready, naming the store.
func TestUsersMySQL(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_MYSQL_DSN": mysqltest.DSN(t, "cmd")})
	var r readiness
	if resp := getJSON(t, n.url("/readyz"), &r); resp.StatusCode != 200 || !r.Ready {
		t.Fatalf("/readyz = %d %+v", resp.StatusCode, r)
	}
	if _, err := n.users.CreateWatchlist(context.Background(), "alice", quotehub.Watchlist{Name: "Tech"}); err != nil {
		t.Fatal(err)
	}

	down := startNode(t, map[string]string{"QUOTEHUB_MYSQL_DSN": "root@tcp(127.0.0.1:1)/quotehub?timeout=200ms", "QUOTEHUB_STORE_TIMEOUT": "500ms"})
	resp := getJSON(t, down.url("/readyz"), &r)
	if resp.StatusCode != 503 || len(r.Reasons) != 1 || !strings.HasPrefix(r.Reasons[0], "users: ") {
		t.Fatalf("/readyz with MySQL down = %d %+v", resp.StatusCode, r)
	}
	if resp := getJSON(t, down.url("/v1/quotes/KRW-BTC"), nil); resp.StatusCode != 200 {
		t.Errorf("a quote read with MySQL down: %d", resp.StatusCode)
	}
}
