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
	"slices"
	"strconv"
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
	s.cmd.Env = append(os.Environ(), "QUOTEHUB_DATA_DIR="+t.TempDir())
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

// startSim runs a quotehub whose n simulated symbols all change every 50 ms.
func startSim(t *testing.T, n int) *server {
	t.Helper()
	return startServer(t, "-admin-addr=", "-sim-symbols", strconv.Itoa(n), "-sim-every-tick",
		"-refresh-interval", "50ms", "-log-level", "error")
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
	srv := startSim(t, 50)

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
		_ = srv.stop() // its output is written until it exits
		t.Logf("progress log:\n%s\nserver output:\n%s", logBuf.String(), srv.out)
	}
}

func TestInterruptStillReports(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startSim(t, 10)
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
	srv := startSim(t, 10)
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
	cfg.Mode, cfg.ConnectRate, cfg.Settle = "churn", 100, 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Churn
	if c == nil || c.Attempts != 10 || c.Successes != 0 || c.Failures != 10 || c.FailuresByKind["dial"] != 10 || rep.Failed != 10 {
		t.Fatalf("churn: %+v", c)
	}
	if c.BackToBaseline != nil || c.Server != nil || rep.Nodes[0].Churn != nil {
		t.Errorf("churn: server figures without a server: %+v", c.Server)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "back to baseline: unknown") || !strings.Contains(text.String(), "dial=10") {
		t.Errorf("churn report:\n%s", text.String())
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
		// A list is refused whole when any of its URLs is not loopback.
		"http://127.0.0.1:1,http://10.0.0.1:8080",
		"http://10.0.0.1:8080,http://127.0.0.1:1",
		"http://127.0.0.1:1, https://example.com ,http://[::1]:2",
		"http://127.0.0.1:1,,http://[::2]:8080",
	} {
		for _, mode := range []string{"ws", "churn"} {
			before := socketsChecked.Load()
			cfg := DefaultConfig()
			cfg.URL, cfg.Mode = u, mode
			start := time.Now()
			rep, err := Run(context.Background(), cfg)
			if err == nil || rep != nil {
				t.Errorf("%s (%s): accepted", u, mode)
				continue
			}
			if time.Since(start) > 100*time.Millisecond || socketsChecked.Load() != before {
				t.Errorf("%s (%s): refused only after network activity (%v)", u, mode, time.Since(start))
			}
			if strings.Contains(u, "//10.0.0.1") && !strings.Contains(err.Error(), "non-loopback") {
				t.Errorf("%s (%s): unclear error %q", u, mode, err)
			}
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://127.8.9.10:80", "http://localhost:8080", "http://LOCALHOST", "http://[::1]:8080", "ws://127.0.0.1:8080/base/"} {
		if _, err := checkTarget(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	bases, err := checkTargets(" http://127.0.0.1:1, ,ws://localhost:2/x/,http://[::1]:3 ")
	if err != nil || len(bases) != 3 || bases[1].String() != "http://localhost:2/x" {
		t.Errorf("checkTargets: %v %v", bases, err)
	}
	for _, u := range []string{"", " , ", "http://127.0.0.1:1,http://127.0.0.1:1/"} {
		if _, err := checkTargets(u); err == nil {
			t.Errorf("checkTargets(%q) accepted", u)
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
		func(c *Config) { c.Mode = "churn"; c.ChurnHold = -time.Second },
		func(c *Config) { c.Mode = "churn"; c.ChurnHold = 2 * time.Minute },
		func(c *Config) { c.ChurnHold = time.Second }, // ws mode
		func(c *Config) { c.Mode = "churn"; c.Settle = -time.Second },
		func(c *Config) { c.Mode = "churn"; c.Settle = time.Hour },
		func(c *Config) { c.Mode = "churn"; c.Duration = 11 * time.Minute },
		func(c *Config) { c.Mode = "churn"; c.DialConcurrency = 0 },
		func(c *Config) { c.URL = "" },
		func(c *Config) { c.URL = "http://127.0.0.1:1,http://127.0.0.1:1" },
		func(c *Config) { c.Sources = 2; c.URL = "http://127.0.0.1:1,http://[::1]:8080" },
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
	cfg.Mode, cfg.ChurnHold, cfg.ConnectRate, cfg.Settle = "churn", time.Second, 0, 0
	cfg.URL = "http://127.0.0.1:1,http://127.0.0.2:1"
	if bases, err := cfg.validate(); err != nil || len(bases) != 2 {
		t.Errorf("churn over two URLs: %v %v", bases, err)
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

func TestCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile %v, %v; want a non-empty file", fi, err)
	}
	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof")); err == nil || !strings.Contains(err.Error(), "-cpuprofile") {
		t.Fatalf("an uncreatable profile: %v", err)
	}
	stop, err = startCPUProfile("")
	if err != nil || stop() != nil {
		t.Fatal("no -cpuprofile must be a no-op")
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
	if _, _, err := parseFlags([]string{"-h"}, &help); err == nil || !strings.Contains(help.String(), "-connect-rate") ||
		!strings.Contains(help.String(), "-churn-hold") || !strings.Contains(help.String(), "-settle") {
		t.Errorf("help: %v\n%s", err, help.String())
	}
	cfg, _, err = parseFlags([]string{"-mode", "churn", "-url", "http://127.0.0.1:1,http://localhost:2", "-churn-hold", "250ms", "-settle", "1s", "-duration", "20s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != "churn" || cfg.ChurnHold != 250*time.Millisecond || cfg.Settle != time.Second || cfg.ConnectRate != 1000 || cfg.DialConcurrency != 256 {
		t.Errorf("parsed %+v", cfg)
	}
	if bases, err := cfg.validate(); err != nil || len(bases) != 2 {
		t.Errorf("validate: %v %v", bases, err)
	}
	if d := DefaultConfig(); d.Settle != 3*time.Second || d.ChurnHold != 0 {
		t.Errorf("churn defaults: settle %v hold %v", d.Settle, d.ChurnHold)
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
quotehub_subscriptions 5042
`
	s, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Goroutines != 2011 || s.CPU != 12.34 || s.RSS != 12906496 || s.Delivered != 106 || s.Conns["ws"] != 1000 || s.Conns["sse"] != 3 || s.Subscriptions != 5042 {
		t.Errorf("parsed %+v", s)
	}
	if p := pointOf(s); p.Connections != 1003 || p.Subscriptions != 5042 || len(p.Missing) != 0 {
		t.Errorf("point %+v", p)
	}
	if _, err := parseMetrics(strings.NewReader("other 1\n")); err == nil {
		t.Error("accepted metrics without the expected series")
	}
	if v := labelValue(`a="x\"y",transport="ws"`, "transport"); v != "ws" {
		t.Errorf("labelValue = %q", v)
	}
}

func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	srv := startSim(t, 50)
	before := runtime.NumGoroutine()
	var logBuf bytes.Buffer
	cfg := DefaultConfig()
	cfg.URL, cfg.Mode, cfg.Universe, cfg.Symbols = srv.url, "churn", 50, 5
	cfg.ConnectRate, cfg.Duration, cfg.Settle = 300, time.Second, 2*time.Second
	cfg.Log = &logBuf
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	c := rep.Churn
	if c == nil {
		t.Fatal("no churn figures")
	}
	if c.Attempts != 300 || c.Successes != 300 || c.Failures != 0 || len(c.FailuresByKind) != 0 || len(rep.Errors) != 0 {
		t.Errorf("attempts %d successes %d failures %d %v errors %v", c.Attempts, c.Successes, c.Failures, c.FailuresByKind, rep.Errors)
	}
	if rep.Conns != 300 || rep.Connected != 300 || rep.Failed != 0 {
		t.Errorf("conns %d connected %d failed %d", rep.Conns, rep.Connected, rep.Failed)
	}
	for name, l := range map[string]*Summary{"connect": c.ConnectLatency, "cycle": c.CycleLatency, "close": c.CloseLatency} {
		if l == nil || l.Count != 300 || l.P50 <= 0 || l.Max < l.P999 || l.P999 < l.P99 || l.P99 < l.P90 || l.P90 < l.P50 {
			t.Errorf("%s latency %+v", name, l)
		}
	}
	if c.CycleLatency.Mean < c.ConnectLatency.Mean {
		t.Errorf("cycle latency %v below connect latency %v", c.CycleLatency.Mean, c.ConnectLatency.Mean)
	}
	// 300 attempts started over 1 s: never faster than asked; how much
	// slower depends on how busy the machine is, so only logged (above).
	if c.ConnectsPerSec <= 0 || c.ConnectsPerSec > 330 || c.LaunchSeconds < 0.9 || c.MaxInFlight < 1 || c.MaxInFlight > int64(cfg.DialConcurrency) {
		t.Errorf("connects/s %.1f launch %.2fs max in flight %d", c.ConnectsPerSec, c.LaunchSeconds, c.MaxInFlight)
	}
	if c.BackToBaseline == nil || !*c.BackToBaseline {
		t.Errorf("not back to baseline: %v %v", c.BaselineFailures, rep.Warnings)
	}
	if !strings.Contains(text.String(), "back to baseline: yes") {
		t.Errorf("no verdict line in the report")
	}
	s := c.Server
	if s == nil || s.Before == nil || s.End == nil || s.Settled == nil || s.Before.RSSBytes <= 0 || s.Settled.Goroutines <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("server figures %+v", s)
	}
	if s.Settled.Connections != 0 || s.Settled.Subscriptions != s.Before.Subscriptions {
		t.Errorf("settled %+v, before %+v", s.Settled, s.Before)
	}
	if len(rep.Nodes) != 1 || rep.Nodes[0].Churn == nil || rep.Nodes[0].Connected != 300 {
		t.Errorf("nodes %+v", rep.Nodes)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Nodes []json.RawMessage `json:"nodes"`
		Churn struct {
			BackToBaseline *bool `json:"back_to_baseline"`
			Attempts       int   `json:"attempts"`
			Server         struct {
				Settled map[string]float64 `json:"settled"`
			} `json:"server"`
			ConnectLatency map[string]float64 `json:"connect_latency_ms"`
		} `json:"churn"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Nodes) != 1 || decoded.Churn.BackToBaseline == nil || !*decoded.Churn.BackToBaseline ||
		decoded.Churn.Attempts != 300 || decoded.Churn.ConnectLatency["p99_9"] <= 0 {
		t.Errorf("JSON report %s", b)
	}
	for _, k := range []string{"rss_bytes", "goroutines", "connections", "subscriptions"} {
		if _, ok := decoded.Churn.Server.Settled[k]; !ok {
			t.Errorf("JSON churn.server.settled lacks %s", k)
		}
	}

	// With -churn-hold, each attempt waits for its snapshot: every symbol
	// has a value by now, so every attempt gets one.
	cfg.ConnectRate, cfg.Duration, cfg.ChurnHold, cfg.Settle = 100, 200*time.Millisecond, time.Second, 500*time.Millisecond
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c = rep.Churn
	if c.Attempts != 20 || c.Successes != 20 || c.QuotesWithinHold != 20 || c.FirstQuoteLatency == nil || c.FirstQuoteLatency.Count != 20 {
		t.Errorf("hold: attempts %d successes %d quotes %d first quote %+v errors %v", c.Attempts, c.Successes, c.QuotesWithinHold, c.FirstQuoteLatency, rep.Errors)
	}
	if c.BackToBaseline == nil || !*c.BackToBaseline {
		t.Errorf("hold: not back to baseline: %v", c.BaselineFailures)
	}

	// Ctrl-C stops starting attempts; the run still settles and reports.
	cfg.ChurnHold, cfg.Duration, cfg.Settle = 0, time.Minute, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c = rep.Churn
	if took := time.Since(start); took > 5*time.Second || !rep.Interrupted || c.Attempts == 0 || c.Attempts > 150 || c.Failures != 0 || c.BackToBaseline == nil {
		t.Errorf("interrupted churn: took %v interrupted %v attempts %d failures %v verdict %v", took, rep.Interrupted, c.Attempts, c.FailuresByKind, c.BackToBaseline)
	}
	if t.Failed() {
		_ = srv.stop() // its output is complete once it has exited
		t.Logf("progress log:\n%s\nserver output:\n%s", logBuf.String(), srv.out)
	}
	checkNoLeaks(t, before)
}

func TestMultiURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	// Two independent memory nodes (no Redis): each is its own cluster.
	var srvs [2]*server
	for j := range srvs {
		srvs[j] = startSim(t, 20)
	}
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.URL = srvs[0].url + "," + srvs[1].url
	cfg.Mode, cfg.Conns, cfg.Symbols, cfg.Universe = "ws", 10, 2, 20
	cfg.Warmup, cfg.Duration = 200*time.Millisecond, time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	if rep.Connected != 10 || rep.Failed != 0 || rep.Dropped != 0 || len(rep.Errors) != 0 || rep.Deliveries == 0 {
		t.Errorf("connected %d failed %d dropped %d errors %v deliveries %d", rep.Connected, rep.Failed, rep.Dropped, rep.Errors, rep.Deliveries)
	}
	if len(rep.Nodes) != 2 {
		t.Fatalf("%d nodes in the report", len(rep.Nodes))
	}
	var delivered float64
	for j, n := range rep.Nodes {
		if n.URL != srvs[j].url {
			t.Errorf("node %d is %s, want %s", j, n.URL, srvs[j].url)
		}
		// Each server's own /metrics, read at the end of the window while
		// the connections were open: 5 each.
		if n.Server == nil || n.Server.Connections["ws"] != 5 || n.Connected != 5 || n.Deliveries == 0 || n.Server.RSSEndBytes <= 0 {
			t.Errorf("node %d: connected %d deliveries %d server %+v", j, n.Connected, n.Deliveries, n.Server)
		} else {
			delivered += n.Server.DeliveredDelta
		}
	}
	s := rep.Server
	if s == nil || s.Connections["ws"] != 10 || s.DeliveredDelta != delivered || s.RSSEndBytes != rep.Nodes[0].Server.RSSEndBytes+rep.Nodes[1].Server.RSSEndBytes {
		t.Errorf("sum %+v", s)
	}
	if !strings.Contains(text.String(), "node 2") || !strings.Contains(text.String(), "sum of 2 nodes") {
		t.Errorf("report lacks the nodes")
	}
	b, _ := json.Marshal(rep)
	var decoded struct {
		Nodes []struct {
			URL    string `json:"url"`
			Server struct {
				Connections map[string]float64 `json:"connections"`
			} `json:"server"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil || len(decoded.Nodes) != 2 || decoded.Nodes[1].Server.Connections["ws"] != 5 {
		t.Errorf("JSON nodes: %v %s", err, b)
	}

	// Churn over both nodes: attempt i goes to node i mod 2.
	cfg.Mode, cfg.ConnectRate, cfg.Duration, cfg.Settle = "churn", 100, 200*time.Millisecond, 500*time.Millisecond
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Churn
	if c.Attempts != 20 || c.Successes != 20 || rep.Nodes[0].Connected != 10 || rep.Nodes[1].Connected != 10 {
		t.Errorf("churn: attempts %d successes %d nodes %d/%d errors %v", c.Attempts, c.Successes, rep.Nodes[0].Connected, rep.Nodes[1].Connected, rep.Errors)
	}
	if c.BackToBaseline == nil || !*c.BackToBaseline || rep.Nodes[0].Churn == nil || rep.Nodes[1].Churn == nil {
		t.Errorf("churn: verdict %v %v", c.BackToBaseline, c.BaselineFailures)
	} else if sum := c.Server.Before.Goroutines; sum != rep.Nodes[0].Churn.Before.Goroutines+rep.Nodes[1].Churn.Before.Goroutines {
		t.Errorf("churn: goroutines sum %v", sum)
	}

	// A node that is down: its connections fail, it has no figures, and
	// the sum covers the other one.
	cfg.URL = srvs[0].url + "," + "http://" + freeAddr(t)
	cfg.Mode, cfg.Conns, cfg.Warmup, cfg.Duration = "ws", 4, 0, 300*time.Millisecond
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 2 || rep.Errors["dial"] != 2 || rep.Nodes[0].Connected != 2 || rep.Nodes[1].Server != nil {
		t.Errorf("one node down: connected %d errors %v nodes %+v %+v", rep.Connected, rep.Errors, rep.Nodes[0], rep.Nodes[1])
	}
	if rep.Server == nil || rep.Nodes[0].Server == nil || rep.Server.RSSEndBytes != rep.Nodes[0].Server.RSSEndBytes ||
		!slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "cover 1 of 2 nodes") }) {
		t.Errorf("one node down: sum %+v warnings %q", rep.Server, rep.Warnings)
	}
	checkNoLeaks(t, before)
}

func TestBaselineVerdict(t *testing.T) {
	base := &ServerPoint{RSSBytes: 100 << 20, Goroutines: 20, Connections: 0, Subscriptions: 7}
	tests := []struct {
		name    string
		settled ServerPoint
		want    string // "yes", "no" or "unknown"
	}{
		{"unchanged", *base, "yes"},
		{"slack", ServerPoint{RSSBytes: 120 << 20, Goroutines: 25, Subscriptions: 7}, "yes"},
		{"goroutine leak", ServerPoint{RSSBytes: 100 << 20, Goroutines: 26, Subscriptions: 7}, "no"},
		{"connection left", ServerPoint{RSSBytes: 100 << 20, Goroutines: 20, Connections: 1, Subscriptions: 7}, "no"},
		{"subscriptions left", ServerPoint{RSSBytes: 100 << 20, Goroutines: 20, Subscriptions: 8}, "no"},
		{"subscriptions lost", ServerPoint{RSSBytes: 100 << 20, Goroutines: 20, Subscriptions: 6}, "no"},
		{"RSS over 20 %", ServerPoint{RSSBytes: 121 << 20, Goroutines: 20, Subscriptions: 7}, "no"},
		{"missing series", ServerPoint{Missing: []string{"quotehub_subscriptions"}}, "unknown"},
	}
	for _, tc := range tests {
		ok, fails := baselineVerdict(base, &tc.settled)
		if got := verdictText(ok); got != tc.want || (got == "no") != (len(fails) > 0) {
			t.Errorf("%s: %s %v, want %s", tc.name, got, fails, tc.want)
		}
	}
	// A small server gets the 16 MiB floor instead of 20 %.
	small := &ServerPoint{RSSBytes: 10 << 20, Goroutines: 10}
	if ok, _ := baselineVerdict(small, &ServerPoint{RSSBytes: 26 << 20, Goroutines: 10}); verdictText(ok) != "yes" {
		t.Error("16 MiB floor not applied")
	}
	if ok, _ := baselineVerdict(small, &ServerPoint{RSSBytes: 27 << 20, Goroutines: 10}); verdictText(ok) != "no" {
		t.Error("RSS over the floor accepted")
	}
	if ok, _ := baselineVerdict(nil, small); ok != nil {
		t.Error("verdict without a baseline")
	}
}
