// Package mysqltest gives tests the real MariaDB/MySQL they run against, a
// database of their own in it.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
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

// Proxy forwards loopback connections to the test server until down,
// which closes the listener and every connection through it, as a server
// restart or a network cut would; up listens again on the same port.
type Proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port), stopped when the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	p := &Proxy{t: t, target: target}
	p.Up()
	t.Cleanup(p.Down)
	return p
}

// Up listens (again, on the same port).
func (p *Proxy) Up() {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(s, c); s.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, s); c.Close() })
		}
	})
}

// Down closes the listener and every connection through it.
func (p *Proxy) Down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Addr is the proxy's address, to put in a DSN instead of the server's.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}
