package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a real quotehub binary running for one test.
type server struct {
	url      string
	cmd      *exec.Cmd
	out      *bytes.Buffer
	waited   chan error
	stopOnce sync.Once
	stopErr  error
}

// stop sends SIGTERM and waits for the exit, killing the server after 10 s.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.waited:
			if err != nil {
				s.stopErr = fmt.Errorf("server exit: %v\n%s", err, s.out)
			}
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.waited
			s.stopErr = fmt.Errorf("server ignored SIGTERM for 10s; killed\n%s", s.out)
		}
	})
	return s.stopErr
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// buildServer builds ../quotehub once per test binary.
func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go command not found: %w", err)
			return
		}
		buildDir, err = os.MkdirTemp("", "quoteload-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(buildDir, "quotehub")
		cmd := exec.Command(goBin, "build", "-o", buildPath, "../quotehub")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ../quotehub: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs the quotehub binary with args on a free port, waits for
// /healthz, and stops it (SIGTERM, then kill after 10 s) when the test ends.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	bin := buildServer(t)
	addr := freeAddr(t)
	s := &server{url: "http://" + addr, out: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, append([]string{"-addr", addr}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.waited = make(chan error, 1)
	go func() { s.waited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 10s: %v\n%s", err, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
	return s
}

// checkNoLeaks waits for the goroutine count to fall back to before.
func checkNoLeaks(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startServer(t, "-admin-addr=", "-sim-symbols", "50", "-sim-every-tick",
		"-refresh-interval", "50ms", "-log-level", "error")

	base := DefaultConfig()
	base.URL = srv.url
	base.Universe = 50
	base.Warmup = 200 * time.Millisecond
	base.ConnectTimeout = 5 * time.Second
	var logBuf bytes.Buffer
	base.Log = &logBuf

	cases := []struct {
		name   string
		adjust func(*Config)
	}{
		{"ws", func(c *Config) { c.Mode, c.Conns, c.Symbols, c.Duration = "ws", 20, 5, 2*time.Second }},
		{"sse", func(c *Config) { c.Mode, c.Conns, c.Symbols, c.Duration = "sse", 10, 5, 2*time.Second }},
		{"http", func(c *Config) { c.Mode, c.Conns, c.Symbols, c.Duration = "http", 4, 5, time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			cfg := base
			tc.adjust(&cfg)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Logf("\n%s", text.String())
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
			if rep.Connected != cfg.Conns || rep.Failed != 0 || rep.Dropped != 0 {
				t.Errorf("connected %d failed %d dropped %d, want %d/0/0", rep.Connected, rep.Failed, rep.Dropped, cfg.Conns)
			}
			if rep.Deliveries == 0 || rep.DeliveriesPerSec <= 0 {
				t.Errorf("no deliveries")
			}
			if rep.SeqRegressions != 0 {
				t.Errorf("%d seq regressions", rep.SeqRegressions)
			}
			if rep.Latency == nil || rep.Latency.Count == 0 || rep.Latency.P50 >= 1000 {
				t.Errorf("latency %+v, want p50 < 1000 ms", rep.Latency)
			}
			if len(rep.Errors) != 0 {
				t.Errorf("errors %v", rep.Errors)
			}
			if rep.MeasuredSeconds < cfg.Duration.Seconds()*0.9 {
				t.Errorf("measured %.2fs of %v", rep.MeasuredSeconds, cfg.Duration)
			}
			s := rep.Server
			if s == nil || s.RSSEndBytes <= 0 || s.RSSBaselineBytes <= 0 || s.GoroutinesEnd <= 0 {
				t.Fatalf("server figures %+v", s)
			}
			switch cfg.Mode {
			case "ws", "sse":
				if s.Connections[cfg.Mode] != float64(cfg.Conns) {
					t.Errorf("server sees %v connections, want %s=%d", s.Connections, cfg.Mode, cfg.Conns)
				}
				if s.DeliveredDelta <= 0 {
					t.Errorf("server delivered delta %v", s.DeliveredDelta)
				}
				if rep.ConnectLatency == nil || rep.ConnectLatency.Count != uint64(cfg.Conns) {
					t.Errorf("connect latency %+v", rep.ConnectLatency)
				}
				// Every symbol of the universe changes every 50 ms: each
				// connection should get about 20 quotes/s per symbol.
				want := float64(cfg.Conns*cfg.Symbols) * 20
				if rep.DeliveriesPerSec < want/4 {
					t.Errorf("deliveries %.0f/s, expected about %.0f/s", rep.DeliveriesPerSec, want)
				}
			case "http":
				if rep.HTTP == nil || rep.HTTP.Status["200"] == 0 || rep.HTTP.RequestsPerSec <= 0 {
					t.Errorf("http figures %+v", rep.HTTP)
				}
			}
			checkNoLeaks(t, before)
		})
	}
	if t.Failed() {
		t.Logf("progress log:\n%s\nserver output:\n%s", logBuf.String(), srv.out)
	}
}

func TestInterruptStillReports(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startServer(t, "-admin-addr=", "-sim-symbols", "10", "-sim-every-tick",
		"-refresh-interval", "50ms", "-log-level", "error")
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.URL, cfg.Universe, cfg.Conns, cfg.Symbols = srv.url, 10, 5, 2
	cfg.Warmup, cfg.Duration = 0, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	if !rep.Interrupted || rep.Connected != 5 || rep.Deliveries == 0 || rep.MeasuredSeconds > 5 {
		t.Errorf("interrupted %v connected %d deliveries %d measured %.2f", rep.Interrupted, rep.Connected, rep.Deliveries, rep.MeasuredSeconds)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors %v", rep.Errors)
	}
	checkNoLeaks(t, before)
}

func TestServerGoneIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startServer(t, "-admin-addr=", "-sim-symbols", "10", "-sim-every-tick",
		"-refresh-interval", "50ms", "-log-level", "error")
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.URL, cfg.Universe, cfg.Conns, cfg.Symbols = srv.url, 10, 5, 2
	cfg.Warmup, cfg.Duration = 0, 30*time.Second
	time.AfterFunc(time.Second, func() { _ = srv.stop() })
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run went on for %v without any connection", took)
	}
	// A shutting-down node closes with 1001.
	if rep.Dropped != 5 || rep.Errors["close_1001"] != 5 || rep.Deliveries == 0 {
		t.Errorf("dropped %d errors %v deliveries %d", rep.Dropped, rep.Errors, rep.Deliveries)
	}
	if len(rep.Warnings) < 2 { // lost connections, no metrics at window end
		t.Errorf("warnings %q", rep.Warnings)
	}
	checkNoLeaks(t, before)
}

func TestConnectFailuresAreCounted(t *testing.T) {
	// Nothing listens on this port: every attempt fails fast with "dial".
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.URL = "http://" + freeAddr(t)
	cfg.Conns, cfg.Universe, cfg.Symbols = 3, 10, 1
	cfg.Warmup, cfg.Duration = 0, 100*time.Millisecond
	for _, mode := range []string{"ws", "sse"} {
		cfg.Mode = mode
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Connected != 0 || rep.Failed != 3 || rep.Errors["dial"] != 3 {
			t.Errorf("%s: connected %d failed %d errors %v", mode, rep.Connected, rep.Failed, rep.Errors)
		}
		if rep.Server != nil || len(rep.Warnings) == 0 {
			t.Errorf("%s: server figures without a server: %+v", mode, rep.Server)
		}
	}
	checkNoLeaks(t, before)
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{
		"http://10.0.0.1:8080",
		"http://192.168.1.1",
		"https://example.com",
		"http://localhost.example.com:8080",
		"http://127.0.0.1.nip.io",
		"http://[::2]:8080",
		"http://[fe80::1%25lo]:8080",
		"http://0.0.0.0:8080",
		"ftp://127.0.0.1",
		"127.0.0.1:8080",
		"http://user@127.0.0.1",
	} {
		before := socketsChecked.Load()
		cfg := DefaultConfig()
		cfg.URL = u
		start := time.Now()
		rep, err := Run(context.Background(), cfg)
		if err == nil || rep != nil {
			t.Errorf("%s: accepted", u)
			continue
		}
		if time.Since(start) > 100*time.Millisecond || socketsChecked.Load() != before {
			t.Errorf("%s: refused only after network activity (%v)", u, time.Since(start))
		}
		if strings.Contains(u, "//10.0.0.1") && !strings.Contains(err.Error(), "non-loopback") {
			t.Errorf("%s: unclear error %q", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://127.8.9.10:80", "http://localhost:8080", "http://LOCALHOST", "http://[::1]:8080", "ws://127.0.0.1:8080/base/"} {
		if _, err := checkTarget(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	// The dial hook refuses what the URL check would have missed.
	if err := loopbackOnly("tcp", "10.0.0.1:80", nil); err == nil {
		t.Error("loopbackOnly accepted 10.0.0.1")
	}
	if err := loopbackOnly("tcp", "127.0.0.1:80", nil); err != nil {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Mode = "grpc" },
		func(c *Config) { c.Conns = 0 },
		func(c *Config) { c.Symbols = 0 },
		func(c *Config) { c.Symbols = 11; c.Universe = 10 },
		func(c *Config) { c.Duration = 11 * time.Minute },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Warmup = -time.Second },
		func(c *Config) { c.Sources = 255 },
		func(c *Config) { c.Sources = 2; c.URL = "http://[::1]:8080" },
		func(c *Config) { c.Rate = 10 }, // ws mode
		func(c *Config) { c.Conns = 1 << 30 },
		func(c *Config) { c.SymbolList = []string{"a", "A"}; c.Symbols = 2 },
	}
	for i, f := range bad {
		cfg := DefaultConfig()
		f(&cfg)
		_, err := cfg.validate()
		if err == nil {
			_, err = cfg.universe()
		}
		if err == nil {
			t.Errorf("case %d: accepted %+v", i, cfg)
		}
	}
	cfg := DefaultConfig()
	if _, err := cfg.validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestFileLimit(t *testing.T) {
	if err := ensureFileLimit(10); err != nil {
		t.Fatal(err)
	}
	err := ensureFileLimit(maxConns * 1000)
	if err == nil || !strings.Contains(err.Error(), "several quoteload processes") {
		t.Errorf("want a clear limit error, got %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, jsonPath, err := parseFlags([]string{"-mode", "sse", "-conns", "7", "-symbol-list", " krw-btc, AAPL,,aapl ", "-symbols", "2", "-json", "-", "-label", "x"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != "sse" || cfg.Conns != 7 || jsonPath != "-" || cfg.Label != "x" {
		t.Errorf("parsed %+v %q", cfg, jsonPath)
	}
	u, err := cfg.universe()
	if err != nil || strings.Join(u, ",") != "KRW-BTC,AAPL" {
		t.Errorf("universe %v %v", u, err)
	}
	var help bytes.Buffer
	if _, _, err := parseFlags([]string{"-h"}, &help); err == nil || !strings.Contains(help.String(), "-connect-rate") {
		t.Errorf("help: %v\n%s", err, help.String())
	}
}

func TestUniverseAndSpread(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Universe, cfg.Prefix, cfg.Symbols = 7, "syn-", 3
	u, err := cfg.universe()
	if err != nil || u[0] != "SYN-000001" || u[6] != "SYN-000007" {
		t.Fatalf("universe %v %v", u, err)
	}
	// 7 connections × 3 symbols over 7 symbols: every symbol has 3 subscribers.
	subs := map[string]int{}
	for i := range 7 {
		syms := connSymbols(u, i, 3)
		for _, s := range syms {
			subs[s]++
		}
		if i == 2 && strings.Join(syms, ",") != "SYN-000007,SYN-000001,SYN-000002" {
			t.Errorf("conn 2 got %v", syms)
		}
	}
	for s, n := range subs {
		if n != 3 {
			t.Errorf("%s has %d subscribers", s, n)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 2011
process_cpu_seconds_total 12.34
process_resident_memory_bytes 1.2906496e+07
quotehub_connections{transport="sse"} 3
quotehub_connections{transport="ws"} 1000
quotehub_quotes_delivered_total{transport="sse"} 6
quotehub_quotes_delivered_total{transport="ws"} 100
quotehub_delivery_latency_seconds_bucket{transport="ws",le="0.001"} 5
`
	s, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Goroutines != 2011 || s.CPU != 12.34 || s.RSS != 12906496 || s.Delivered != 106 || s.Conns["ws"] != 1000 || s.Conns["sse"] != 3 {
		t.Errorf("parsed %+v", s)
	}
	if _, err := parseMetrics(strings.NewReader("other 1\n")); err == nil {
		t.Error("accepted metrics without the expected series")
	}
	if v := labelValue(`a="x\"y",transport="ws"`, "transport"); v != "ws" {
		t.Errorf("labelValue = %q", v)
	}
}
