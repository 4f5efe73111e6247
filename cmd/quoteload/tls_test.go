package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tlsFront puts a TLS-terminating reverse proxy (as a deployment would)
// in front of srv and returns its https:// URL and the CA that signs it.
func tlsFront(t *testing.T, srv *server) (string, *x509.Certificate) {
	t.Helper()
	target, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// No idle connections to the server: the leak checks count only
	// quoteload's goroutines.
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	ts := httptest.NewUnstartedServer(proxy)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL, ts.Certificate()
}

// TestWSOverTLS loads a wss:// target (coder/websocket's client, the one
// quoteload uses for TLS) through a TLS proxy in front of a real quotehub.
func TestWSOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startSim(t, 20)
	front, cert := tlsFront(t, srv)

	cfg := DefaultConfig()
	cfg.URL = front
	cfg.Mode, cfg.Conns, cfg.Symbols, cfg.Universe = "ws", 10, 5, 20
	cfg.Duration, cfg.Warmup, cfg.ConnectTimeout = 1500*time.Millisecond, 200*time.Millisecond, 5*time.Second

	t.Run("trusted", func(t *testing.T) {
		before := runtime.NumGoroutine()
		c := cfg
		c.RootCAs = x509.NewCertPool()
		c.RootCAs.AddCert(cert)
		rep, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Connected != c.Conns || rep.Failed != 0 || rep.Dropped != 0 || len(rep.Errors) != 0 {
			t.Fatalf("connected %d failed %d dropped %d errors %v, want %d/0/0 and none", rep.Connected, rep.Failed,
				rep.Dropped, rep.Errors, c.Conns)
		}
		if rep.Deliveries == 0 || rep.SeqRegressions != 0 || rep.ConnectLatency == nil || rep.ConnectLatency.Count != uint64(c.Conns) {
			t.Errorf("deliveries %d, seq regressions %d, connect latency %+v", rep.Deliveries, rep.SeqRegressions, rep.ConnectLatency)
		}
		if rep.Server == nil || rep.Server.Connections["ws"] != float64(c.Conns) {
			t.Errorf("server figures (read through the proxy) %+v", rep.Server)
		}
		checkNoLeaks(t, before)
	})

	t.Run("slow", func(t *testing.T) { // coder/websocket over the paced transport
		before := runtime.NumGoroutine()
		c := cfg
		c.Conns, c.Symbols = 4, 20
		c.SlowShare, c.SlowRate, c.Window = 0.5, 2000, 500*time.Millisecond
		c.RootCAs = x509.NewCertPool()
		c.RootCAs.AddCert(cert)
		rep, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Connected != c.Conns || len(rep.Groups) != 2 || rep.SeqRegressions != 0 {
			t.Fatalf("connected %d, groups %+v, seq regressions %d", rep.Connected, rep.Groups, rep.SeqRegressions)
		}
		o, s := rep.Groups[0], rep.Groups[1]
		// 20 symbols every 50 ms is about 90 KB/s offered; the slow ones
		// read 2 KB/s of TLS records.
		if s.Name != "slow" || s.Connected != 2 || s.BytesPerSecPerConn > 4000 || o.BytesPerSecPerConn < 10*s.BytesPerSecPerConn {
			t.Errorf("slow %+v, others %+v: want the slow ones at about 2 KB/s", s, o)
		}
		checkNoLeaks(t, before)
	})

	t.Run("http", func(t *testing.T) { // net/http's client, which reads https:// targets
		before := runtime.NumGoroutine()
		c := cfg
		c.Mode, c.Conns = "http", 2
		c.RootCAs = x509.NewCertPool()
		c.RootCAs.AddCert(cert)
		rep, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rep.HTTP == nil || rep.HTTP.Status["200"] == 0 || rep.Deliveries == 0 || len(rep.Errors) != 0 || rep.SeqRegressions != 0 {
			t.Fatalf("http over TLS: %+v, deliveries %d, errors %v", rep.HTTP, rep.Deliveries, rep.Errors)
		}
		checkNoLeaks(t, before)
	})

	t.Run("untrusted", func(t *testing.T) {
		before := runtime.NumGoroutine()
		c := cfg
		c.Conns, c.Duration = 3, 200*time.Millisecond
		rep, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Connected != 0 || rep.Failed != c.Conns || rep.Errors["handshake"] != uint64(c.Conns) {
			t.Fatalf("with an unknown CA: connected %d failed %d errors %v, want every attempt a handshake error",
				rep.Connected, rep.Failed, rep.Errors)
		}
		checkNoLeaks(t, before)
	})
}

func TestCAFlag(t *testing.T) {
	ts := httptest.NewTLSServer(nil)
	ts.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseFlags([]string{"-ca", good}, &strings.Builder{})
	if err != nil || cfg.RootCAs == nil || tlsConfig(cfg) == nil || tlsConfig(cfg).RootCAs != cfg.RootCAs {
		t.Fatalf("-ca %s: %v, RootCAs %v", good, err, cfg.RootCAs)
	}
	if cfg, _, _ := parseFlags(nil, &strings.Builder{}); cfg.RootCAs != nil || tlsConfig(cfg) != nil {
		t.Error("without -ca the system's CAs must be used")
	}
	for _, tc := range []struct{ file, want string }{
		{bad, "no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), "no such file"},
	} {
		if _, _, err := parseFlags([]string{"-ca", tc.file}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-ca %s: %v, want an error containing %q", tc.file, err, tc.want)
		}
	}
}
