// Package mysqltest gives tests the real MariaDB/MySQL they run against, a
// database of their own in it.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Server is the DSN of the test server without a database:
// QUOTEHUB_TEST_MYSQL, default root@tcp(127.0.0.1:3306)/ (scripts/services.sh
// makes sure one answers there).
func Server() string {
	if a := os.Getenv("QUOTEHUB_TEST_MYSQL"); a != "" {
		return a
	}
	return "root@tcp(127.0.0.1:3306)/"
}

var unsafe = regexp.MustCompile(`[^a-z0-9_]`)

// DSN creates a database no other test uses, qh_<name>_<random>, and
// returns its DSN; the database is dropped when the test ends. Without a
// server the test is skipped, except under CI=true, where it fails: CI
// must never pass by skipping.
func DSN(t testing.TB, name string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(Server())
	if err != nil {
		t.Fatalf("QUOTEHUB_TEST_MYSQL: %v", err)
	}
	cfg.Timeout = 2 * time.Second
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("MySQL at %s is required under CI=true (run scripts/services.sh): %v", cfg.Addr, err)
		}
		t.Skipf("no MySQL at %s (run scripts/services.sh): %v", cfg.Addr, err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "qh_" + unsafe.ReplaceAllString(strings.ToLower(name), "_") + "_" + hex.EncodeToString(b[:])
	if len(db) > 64 {
		db = db[:55] + "_" + hex.EncodeToString(b[:])
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+db+"` CHARACTER SET utf8mb4"); err != nil {
		admin.Close()
		t.Fatalf("CREATE DATABASE %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE `"+db+"`"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", db, err)
		}
		admin.Close()
	})
	cfg.DBName = db
	return cfg.FormatDSN()
}
