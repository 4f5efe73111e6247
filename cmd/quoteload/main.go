// Command quoteload is a load generator for quotehub. It speaks the wire
// protocol (WebSocket, SSE or HTTP reads) from the client side only, opens a
// bounded number of connections to one or more quotehub nodes on this
// machine, measures what arrives for a bounded time and prints a report.
//
// Each connection i subscribes to k symbols spread deterministically over a
// universe of S symbols (symbol (i*k + j) mod S for j < k), so every symbol
// has about N*k/S subscribers. For every pushed quote it records the
// delivery latency (receive time − fetched_at; fetched_at is in
// milliseconds, so latencies are ±1 ms) and checks that seq never goes
// backwards per connection and symbol. Around the measured window it reads
// the server's /metrics for its memory, CPU, goroutines and own delivery
// count.
//
// -url may list several base URLs, comma-separated (several nodes of one
// cluster, or independent servers): connection i (http mode: worker i) goes
// to URL i mod len(urls), and /metrics is read from every URL; the report
// gives each node's figures and their sum.
//
// -mode churn measures connection churn instead of a steady load: for
// -duration it opens WebSockets at -connect-rate, at most -dial-concurrency
// attempts in flight, and each attempt runs one whole cycle — dial,
// handshake, welcome, subscribed (optionally the first quotes frame, within
// -churn-hold), close with 1000. It reports attempts, failures by kind, the
// achieved connects/s, connect latency (dial → welcome) and cycle latency
// (dial → subscribed), and the server's RSS, goroutines, connections and
// subscriptions before the churn, at its end and after -settle, with a
// verdict: is every node back to its baseline?
//
// Slow readers (ws, sse): -slow-share makes that fraction of the
// connections (spread evenly over them) read their socket through a token
// bucket at -slow-rate bytes per second — at most rate × 20 ms per read,
// or 1 KiB when that is at most a quarter second's worth —
// so that what they do not read backs up through TCP flow control to the
// server. -rcvbuf sets SO_RCVBUF on every connection's socket before it
// connects, bounding what the client's kernel holds. The report then gives
// the slow connections' figures and the others' apart: quotes received,
// the age of what they got (receive time − fetched_at) as p50/p90/p99/max,
// connections still connected at the end, disconnects by reason (close
// code, reset, eof), seq regressions and repeats; -window adds the age
// percentiles per window of the measured time, so that growth is visible:
//
//	go run ./cmd/quoteload -url http://127.0.0.1:18080 -mode ws -conns 1 \
//	    -symbols 200 -universe 1000 -slow-share 1 -slow-rate 200KB \
//	    -rcvbuf 64KiB -window 5s -duration 60s
//
// Only loopback targets are allowed (127.0.0.0/8, ::1, localhost): any other
// host is refused before a socket is opened, and every socket checks its
// resolved address again before it connects.
//
// Usage:
//
//	go build -o /tmp/quotehub ./cmd/quotehub
//	/tmp/quotehub -addr 127.0.0.1:18080 -admin-addr= -sim-symbols 1000 \
//	    -sim-every-tick -refresh-interval 100ms -log-level warn &
//	go run ./cmd/quoteload -url http://127.0.0.1:18080 -mode ws \
//	    -conns 1000 -symbols 10 -universe 1000 -duration 10s -json report.json
//
// The run goes through four phases: ramp-up (connections opened at
// -connect-rate), warm-up (-warmup, not measured), the measured window
// (-duration) and shutdown (WebSockets closed with 1000, streams cancelled).
// Ctrl-C ends the run early and still prints the report; a second Ctrl-C
// kills the process. Every run has a hard deadline of ramp + warm-up +
// duration + 30 s. Beyond ~28,000 connections, use -sources so that
// connections bind several 127.0.0.x source addresses.
//
// Churn:
//
//	go run ./cmd/quoteload -url http://127.0.0.1:18080 -mode churn \
//	    -connect-rate 1000 -symbols 5 -universe 1000 -duration 20s
//
// A churn run has no ramp-up or warm-up: attempt i is started at
// i / -connect-rate into the run (as soon as a slot is free with rate 0)
// until -duration has passed; then the run waits for the attempts in
// flight, reads /metrics ("end"), waits -settle and reads it again
// ("settled"). Its hard deadline is duration + connect timeout + hold +
// settle + 40 s.
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"quotehub/internal/proc"
)

// Limits on what one run may ask for.
const (
	maxDuration = 10 * time.Minute
	maxWarmup   = 5 * time.Minute
	maxConns    = 1_000_000
	maxSources  = 254
	maxURLs     = 64
	maxHold     = time.Minute
	maxSettle   = 5 * time.Minute
	// maxChurnAttempts bounds a churn run in count as -duration bounds it
	// in time (10 m at 1000/s is 600,000 attempts).
	maxChurnAttempts = 10_000_000
	// fdMargin is how many descriptors besides the connections a run needs
	// (stdio, the metrics client, the Go runtime).
	fdMargin = 64
)

// Config is one load run.
type Config struct {
	URL             string         // base URL of the server (loopback only); several comma-separated for several nodes
	Mode            string         // ws, sse, http or churn
	Conns           int            // connections (http: concurrent workers; churn: unused)
	Symbols         int            // symbols per connection
	Universe        int            // symbols to choose from: Prefix + 000001 … Universe
	Prefix          string         // synthetic symbol prefix
	SymbolList      []string       // explicit universe; overrides Universe and Prefix
	ConnectRate     float64        // connections opened per second during ramp-up (churn: for the whole run); 0 = as fast as possible
	ConnectTimeout  time.Duration  // per connection: dial + handshake (+ welcome; churn: + subscribed)
	DialConcurrency int            // connection attempts in flight at once
	Duration        time.Duration  // measured window (churn: how long attempts are started)
	Warmup          time.Duration  // time after ramp-up that is not measured
	Sources         int            // 127.0.0.x source addresses to spread connections over
	Rate            float64        // http mode: target requests per second in total; 0 = as fast as possible
	ReadPath        string         // http mode: the path read per symbol, {symbol} replaced; "" = /v1/quotes/{symbol}
	Headers         headerList     // http mode: sent with every read
	ChurnHold       time.Duration  // churn mode: how long an attempt waits for its first quotes frame; 0 = not at all
	Settle          time.Duration  // churn mode: wait after the last close before the "settled" /metrics read
	Label           string         // free text copied into the report
	RootCAs         *x509.CertPool // CAs trusted for https:// targets; nil = the system's
	CPUProfile      string         // write a CPU profile of quoteload itself here ("" = none)
	SlowShare       float64        // ws, sse: fraction of the connections that read slowly (0 = none)
	SlowRate        int64          // bytes per second each slow connection reads
	RcvBuf          int64          // SO_RCVBUF of every connection's socket, in bytes (0 = the system's default)
	Window          time.Duration  // ws, sse: age percentiles per window of this length (0 = none)
	Candles         string         // ws: candle intervals to subscribe to as well (see candles.go)
	Log             io.Writer      // progress messages; nil discards them
}

// DefaultConfig returns the defaults of the command-line flags.
func DefaultConfig() Config {
	return Config{
		URL:             "http://127.0.0.1:8080",
		Mode:            "ws",
		Conns:           100,
		Symbols:         10,
		Universe:        1000,
		Prefix:          "SYN-",
		ConnectRate:     1000,
		ConnectTimeout:  10 * time.Second,
		DialConcurrency: 256,
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		Sources:         1,
		Settle:          3 * time.Second,
	}
}

func main() {
	cfg, jsonPath, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quoteload:", err)
		os.Exit(2)
	}
	cfg.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quoteload:", err)
		os.Exit(1)
	}
	if cfg.Mode == "follow" {
		os.Exit(mainFollow(ctx, stop, cfg, jsonPath, stopProfile))
	}
	rep, err := Run(ctx, cfg)
	stop()
	if perr := stopProfile(); perr != nil {
		fmt.Fprintln(os.Stderr, "quoteload: -cpuprofile:", perr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quoteload:", err)
		os.Exit(1)
	}
	if jsonPath != "-" {
		rep.WriteText(os.Stdout)
	}
	if jsonPath != "" {
		if err := writeJSON(rep, jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "quoteload:", err)
			os.Exit(1)
		}
	}
}

// startCPUProfile profiles this process into path ("" = not at all) until
// the returned function is called.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeJSON writes the report to path ("-" = stdout).
func writeJSON(rep *Report, path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

const usageHead = `quoteload: load generator for quotehub (loopback targets only).

Opens -conns connections (WebSocket, SSE, or HTTP read workers) to a quotehub
on this machine, each subscribed to -symbols symbols spread over the universe
(connection i gets symbols (i*k + j) mod S), measures for -duration after
ramp-up and -warmup, and prints deliveries/s, delivery latency (receive time −
fetched_at, ±1 ms), seq regressions, connect latency, errors and the server's
RSS/CPU/goroutines from /metrics. Ctrl-C ends the run early with a report.

-url may list several nodes (comma-separated): connection i goes to URL
i mod len(urls), and every node's /metrics is read and reported, with the sum.

-mode churn opens and closes WebSockets at -connect-rate for -duration (each:
dial, welcome, subscribed, optionally the first quotes within -churn-hold,
close 1000) and reports connects/s, connect and cycle latency, failures by
kind and whether the server's goroutines, connections, subscriptions and RSS
are back to their baseline -settle after the last close.

-slow-share makes that fraction of the ws or sse connections read at
-slow-rate bytes/s (token bucket on the socket, so TCP flow control backs up
to the server); -rcvbuf sets SO_RCVBUF on every socket. The report then gives
the slow connections and the others apart: age of what they receive
(receive time − fetched_at), disconnects by reason, seq regressions and
repeats; -window adds age percentiles per window of the measured time.

-mode follow opens one WebSocket per user (-users prefix + number), each with a
token signed with -jwt-secret, follows the user's portfolio and reports the age
of its portfolio frames (receive time − as_of); -seed-rate first writes each
user's -symbols holdings with PUT /v1/me/portfolio at that rate at most.

An https:// URL loads a quotehub behind a TLS-terminating proxy on this
machine (wss:// for WebSockets); -ca names the CA to trust when the proxy's
certificate is not signed by one the system trusts.

Examples:
  quoteload -url http://127.0.0.1:18080 -mode ws -conns 1000 -symbols 10 \
      -universe 1000 -duration 10s -json report.json
  quoteload -url http://127.0.0.1:18080,http://127.0.0.1:18081 -mode sse -conns 200
  quoteload -url http://127.0.0.1:18080 -mode churn -connect-rate 1000 \
      -symbols 5 -universe 1000 -duration 20s
  quoteload -url http://127.0.0.1:18080 -mode ws -conns 1000 -symbols 10 \
      -slow-share 0.1 -slow-rate 5KB -rcvbuf 64KiB -window 5s -duration 30s

Flags:
`

// parseFlags parses the command line into a Config and the -json path.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("quoteload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	var symbolList, jsonPath, caFile string
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the quotehub to load, or several comma-separated (connection i goes to URL i mod n); each must be loopback: 127.0.0.0/8, ::1 or localhost")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "transport: ws (WebSocket /v1/ws), sse (/v1/sse), http (GET /v1/quotes/{symbol}), churn (WebSocket connect/subscribe/close cycles at -connect-rate), or follow (one user per WebSocket following its portfolio: the age of the portfolio frames)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections to open (http mode: concurrent request workers; churn mode: unused)")
	fs.IntVar(&cfg.Symbols, "symbols", cfg.Symbols, "symbols per connection (k); http workers cycle through theirs")
	fs.IntVar(&cfg.Universe, "universe", cfg.Universe, "universe size S: symbols are chosen from PREFIX000001 … PREFIX<S> (6-digit zero padding)")
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "prefix of the synthetic symbol names")
	fs.StringVar(&symbolList, "symbol-list", "", "comma-separated explicit universe (A,B,C); replaces -universe and -prefix")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", cfg.ConnectRate, "connections opened per second during ramp-up (ws, sse; http workers all start at once; churn: connect cycles started per second for the whole run); 0 = as fast as possible")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "per connection: dial + handshake (+ welcome; churn: + subscribed) must finish within this")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", cfg.DialConcurrency, "connection attempts in flight at once during ramp-up (churn: whole cycles in flight, close included)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time after ramp-up and warm-up (churn: how long new attempts are started) (max 10m)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time after ramp-up that is not measured (max 5m; not used by churn)")
	fs.IntVar(&cfg.Sources, "sources", cfg.Sources, "number of source addresses 127.0.0.1 … 127.0.0.N; when N > 1, connection i binds 127.0.0.(1 + i mod N), allowing > 28k connections (max 254)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "http mode: target requests per second in total; 0 = as fast as possible")
	fs.StringVar(&cfg.ReadPath, "read-path", "", "http mode: the path (and query) to read per symbol, {symbol} replaced, e.g. '/v1/candles/{symbol}?interval=1d&count=200' (default /v1/quotes/{symbol})")
	followFlags(fs)
	fs.Var(&cfg.Headers, "header", "http mode: a request header sent with every read, \"Name: value\" (repeatable), e.g. 'Authorization: Bearer TOKEN' with -read-path /v1/me/portfolio")
	fs.DurationVar(&cfg.ChurnHold, "churn-hold", cfg.ChurnHold, "churn mode: after subscribed, wait up to this long for the snapshot / first quotes frame before closing (max 1m); 0 = close at once")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "churn mode: wait this long after the last close before reading /metrics for the back-to-baseline verdict (max 5m)")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this path (- = stdout, instead of the table)")
	fs.StringVar(&cfg.Label, "label", "", "free text copied into the report")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of quoteload itself to this file (go tool pprof), to see where the load generator spends its time")
	fs.Float64Var(&cfg.SlowShare, "slow-share", 0, "ws, sse: fraction of the connections (0 … 1, spread evenly) that read their socket slowly, at -slow-rate; the report gives their figures and the others' apart")
	fs.Var(byteSizeFlag{&cfg.SlowRate}, "slow-rate", "bytes per second each slow connection reads from its socket (token bucket; unit B, KB, KiB, MB, MiB: 200KB, 64KiB/s)")
	fs.Var(byteSizeFlag{&cfg.RcvBuf}, "rcvbuf", "SO_RCVBUF of every connection's socket, set before it connects (64KiB; Linux reports twice the request); 0 = the system's default")
	fs.StringVar(&cfg.Candles, "candles", "", "ws: also subscribe to candle streams of these intervals (e.g. 1m,1d) and report the candle frames' age")
	fs.DurationVar(&cfg.Window, "window", 0, "ws, sse: also report the age of what arrives (receive time − fetched_at) per window of this length, for the slow connections and the others (e.g. 5s); 0 = not at all")
	fs.StringVar(&caFile, "ca", "", "PEM file of the CA certificates to trust for https:// targets (default: the system's)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if symbolList != "" {
		for s := range strings.SplitSeq(symbolList, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.SymbolList = append(cfg.SymbolList, s)
			}
		}
		if len(cfg.SymbolList) == 0 {
			return cfg, "", errors.New("-symbol-list names no symbol")
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return cfg, "", fmt.Errorf("-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return cfg, "", fmt.Errorf("-ca %s: no PEM certificate in it", caFile)
		}
	}
	return cfg, jsonPath, nil
}

// validate checks cfg and returns the parsed target URLs (one per node, in
// the order given). It does no I/O.
func (cfg *Config) validate() ([]*url.URL, error) {
	bases, err := checkTargets(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case "ws", "sse", "http", "churn":
	default:
		return nil, fmt.Errorf("-mode %q: want ws, sse, http or churn", cfg.Mode)
	}
	if err := cfg.checkCandles(); err != nil {
		return nil, err
	}
	if cfg.Conns < 1 || cfg.Conns > maxConns {
		return nil, fmt.Errorf("-conns %d: want 1 … %d", cfg.Conns, maxConns)
	}
	if cfg.SymbolList == nil {
		if cfg.Universe < 1 || cfg.Universe > 999_999 {
			return nil, fmt.Errorf("-universe %d: want 1 … 999999", cfg.Universe)
		}
	}
	if cfg.Symbols < 1 || cfg.Symbols > cfg.universeSize() {
		return nil, fmt.Errorf("-symbols %d: want 1 … %d (the universe size)", cfg.Symbols, cfg.universeSize())
	}
	if cfg.Duration <= 0 || cfg.Duration > maxDuration {
		return nil, fmt.Errorf("-duration %v: want > 0 and at most %v", cfg.Duration, maxDuration)
	}
	if cfg.Warmup < 0 || cfg.Warmup > maxWarmup {
		return nil, fmt.Errorf("-warmup %v: want 0 … %v", cfg.Warmup, maxWarmup)
	}
	if cfg.ConnectRate < 0 {
		return nil, fmt.Errorf("-connect-rate %g: want >= 0", cfg.ConnectRate)
	}
	if cfg.ConnectTimeout <= 0 || cfg.ConnectTimeout > time.Minute {
		return nil, fmt.Errorf("-connect-timeout %v: want > 0 and at most 1m", cfg.ConnectTimeout)
	}
	if cfg.DialConcurrency < 1 {
		return nil, fmt.Errorf("-dial-concurrency %d: want >= 1", cfg.DialConcurrency)
	}
	if cfg.Sources < 1 || cfg.Sources > maxSources {
		return nil, fmt.Errorf("-sources %d: want 1 … %d", cfg.Sources, maxSources)
	}
	if cfg.Sources > 1 {
		for _, u := range bases {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.To4() == nil {
				return nil, fmt.Errorf("-sources %d binds 127.0.0.x source addresses; the target %s is IPv6", cfg.Sources, u.Hostname())
			}
		}
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("-rate %g: want >= 0", cfg.Rate)
	}
	if cfg.Rate > 0 && cfg.Mode != "http" {
		return nil, errors.New("-rate applies to -mode http only")
	}
	if cfg.ChurnHold < 0 || cfg.ChurnHold > maxHold {
		return nil, fmt.Errorf("-churn-hold %v: want 0 … %v", cfg.ChurnHold, maxHold)
	}
	if cfg.ChurnHold > 0 && cfg.Mode != "churn" {
		return nil, errors.New("-churn-hold applies to -mode churn only")
	}
	if cfg.Settle < 0 || cfg.Settle > maxSettle {
		return nil, fmt.Errorf("-settle %v: want 0 … %v", cfg.Settle, maxSettle)
	}
	if err := cfg.validateSlow(); err != nil {
		return nil, err
	}
	return bases, nil
}

// universeSize is the number of symbols connections choose from.
func (cfg *Config) universeSize() int {
	if cfg.SymbolList != nil {
		return len(cfg.SymbolList)
	}
	return cfg.Universe
}

// universe returns the symbol names, normalised as the server sends them
// back (trimmed, ASCII upper case), without duplicates.
func (cfg *Config) universe() ([]string, error) {
	if cfg.SymbolList == nil {
		out := make([]string, cfg.Universe)
		for i := range out {
			out[i] = normSymbol(fmt.Sprintf("%s%06d", cfg.Prefix, i+1))
		}
		return out, nil
	}
	seen := make(map[string]bool, len(cfg.SymbolList))
	var out []string
	for _, s := range cfg.SymbolList {
		s = normSymbol(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) < cfg.Symbols {
		return nil, fmt.Errorf("-symbol-list has %d distinct symbols, fewer than -symbols %d", len(out), cfg.Symbols)
	}
	return out, nil
}

// normSymbol trims ASCII white space and upper-cases ASCII letters only, as
// the protocol normalises symbols.
func normSymbol(s string) string {
	s = strings.Trim(s, " \t\r\n")
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// connSymbols returns connection i's k symbols: (i*k + j) mod S.
func connSymbols(universe []string, i, k int) []string {
	out := make([]string, k)
	s := len(universe)
	base := (i % s) * (k % s) % s // (i*k) mod S without overflow
	for j := range out {
		out[j] = universe[(base+j)%s]
	}
	return out
}

// checkTargets splits raw at commas and checks every URL with checkTarget:
// one URL that is not loopback refuses the whole list. Empty entries are
// ignored; a URL named twice is refused (its node's figures would count
// twice). It does no I/O.
func checkTargets(raw string) ([]*url.URL, error) {
	var out []*url.URL
	seen := map[string]bool{}
	for part := range strings.SplitSeq(raw, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		u, err := checkTarget(part)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("-url lists %s twice", u)
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("-url %q names no URL", raw)
	case len(out) > maxURLs:
		return nil, fmt.Errorf("-url lists %d URLs: at most %d", len(out), maxURLs)
	}
	return out, nil
}

// checkTarget parses raw and refuses any host that is not loopback:
// 127.0.0.0/8, ::1 or the name localhost. It does no I/O.
func checkTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url %q: %v", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("-url %q: scheme must be http or https (ws, wss accepted)", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("-url %q: user info is not supported", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("-url %q: no host", raw)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("-url %q: refusing non-loopback target %q: quoteload only loads servers on this machine (127.0.0.0/8, ::1 or localhost)", raw, host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	return u, nil
}

// isLoopbackHost reports whether host is a loopback IP literal or the name
// localhost.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		return false // zoned IPv6: never loopback
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ensureFileLimit raises the soft open-file limit to the hard limit and
// fails when conns connections would still not fit.
func ensureFileLimit(conns int) error {
	if _, err := proc.RaiseFileLimit(uint64(conns) + fdMargin); err != nil {
		return fmt.Errorf("%d connections: %w, or split the load over several quoteload processes", conns, err)
	}
	return nil
}

// Run phases; connections read the current one on every frame to decide
// whether it is measured.
const (
	phaseRamp int32 = iota
	phaseWarmup
	phaseMeasure
	phaseDone
)

// shutdownGrace is how long the run waits for connections to close after
// the hard deadline forced them shut.
const shutdownGrace = 5 * time.Second

// Run performs one load run and returns its report. It refuses non-loopback
// targets (any of the -url list) before any I/O. Cancelling ctx (Ctrl-C)
// ends the run early: the connections are closed and the report covers what
// was measured. Run returns only after every connection it opened is closed
// and every goroutine it started has ended (or, should one hang, after the
// hard deadline plus a grace period, with a warning in the report).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	bases, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	universe, err := cfg.universe()
	if err != nil {
		return nil, err
	}
	if cfg.Mode == "churn" {
		return runChurn(ctx, cfg, bases, universe)
	}
	if err := ensureFileLimit(cfg.Conns); err != nil {
		return nil, err
	}
	r := newRunner(cfg, bases)
	defer r.closeIdle()

	rampBudget := cfg.ConnectTimeout + 5*time.Second
	if cfg.ConnectRate > 0 && cfg.Mode != "http" {
		rampBudget += time.Duration(float64(cfg.Conns) / cfg.ConnectRate * float64(time.Second))
	}
	hardBudget := rampBudget + cfg.Warmup + cfg.Duration + 30*time.Second
	hardCtx, hardCancel := context.WithTimeout(context.Background(), hardBudget)
	defer hardCancel()
	stopCtx, stopCancel := context.WithCancel(hardCtx)
	defer stopCancel()
	r.stopCtx = stopCtx

	rep := newReport(cfg, bases, len(universe))
	started := time.Now()
	rep.StartedAt = started.UTC()

	// Server baseline, before any connection is opened: one sample per
	// node, nil where /metrics could not be read.
	baseline := r.scrapeAll(hardCtx, nil, func(node string, err error) {
		rep.warnf("%sserver metrics unavailable (%v): no server figures", node, err)
	})

	conns := make([]*conn, cfg.Conns)
	nSlow := slowCount(cfg.Conns, cfg.SlowShare)
	for i := range conns {
		conns[i] = &conn{id: i, syms: connSymbols(universe, i, cfg.Symbols), done: make(chan struct{})}
		st := &conns[i].st
		st.slow = isSlow(i, cfg.Conns, nSlow)
		if r.windows != nil {
			st.win = &connWindow{aw: r.windows, group: st.group()}
		}
	}
	if nSlow > 0 {
		r.logf("%d of %d connections read at %s/s", nSlow, cfg.Conns, sizeText(cfg.SlowRate))
	}

	// Ramp-up.
	r.logf("ramp-up: %d %s connections at %s", cfg.Conns, cfg.Mode, rateText(cfg.ConnectRate))
	rampCtx, rampCancel := context.WithTimeout(stopCtx, rampBudget)
	defer rampCancel()
	unhook := context.AfterFunc(ctx, rampCancel)
	launched := r.ramp(rampCtx, conns)
	rampCancel()
	unhook()
	rep.RampSeconds = time.Since(started).Seconds()
	r.logf("ramp-up done in %.2fs: %d connected, %d failed", rep.RampSeconds, r.nOK.Load(), int64(cfg.Conns)-r.nOK.Load())
	if hardCtx.Err() != nil {
		rep.HardDeadlineHit = true
	}

	// Warm-up and the measured window.
	var s0, s1 []*serverSample
	var t0, t1 time.Time
	if ctx.Err() == nil && hardCtx.Err() == nil {
		r.phase.Store(phaseWarmup)
		if cfg.Warmup > 0 {
			r.logf("warm-up %v", cfg.Warmup)
			sleepCtx(ctx, hardCtx, cfg.Warmup)
		}
	}
	if ctx.Err() == nil && hardCtx.Err() == nil {
		s0 = r.scrapeAll(hardCtx, baseline, func(node string, err error) {
			rep.warnf("%sserver metrics at window start: %v", node, err)
		})
		r.logf("measuring %v", cfg.Duration)
		cpu0 := processCPU()
		t0 = time.Now()
		if r.windows != nil {
			r.windows.startUs.Store(t0.UnixMicro())
		}
		r.phase.Store(phaseMeasure)
		if r.measure(ctx, hardCtx, cfg.Duration) {
			rep.warnf("every connection was lost: the window ended early")
		}
		r.phase.Store(phaseDone)
		t1 = time.Now()
		rep.ClientCPUSeconds = processCPU() - cpu0
		rep.ClientCPUCores = rep.ClientCPUSeconds / t1.Sub(t0).Seconds()
		s1 = r.scrapeAll(hardCtx, s0, func(node string, err error) {
			rep.warnf("%sserver metrics at window end: %v", node, err)
		})
	}
	r.phase.Store(phaseDone)
	if ctx.Err() != nil {
		rep.Interrupted = true
		rep.warnf("interrupted: the run ended early")
	}
	if hardCtx.Err() != nil {
		rep.HardDeadlineHit = true
	}

	// Shutdown: close every connection, wait for every goroutine.
	r.logf("closing %d connections", r.nOK.Load())
	closeStart := time.Now()
	unfinished := r.shutdown(hardCtx, stopCancel, conns[:launched])
	rep.CloseSeconds = time.Since(closeStart).Seconds()
	if unfinished > 0 {
		rep.warnf("%d connections did not end within the hard deadline plus %v; their figures are left out", unfinished, shutdownGrace)
	}
	if rep.HardDeadlineHit {
		rep.warnf("hard deadline (%v) reached: connections were closed abruptly", hardBudget.Round(time.Millisecond))
	}

	if !t0.IsZero() {
		rep.MeasuredSeconds = t1.Sub(t0).Seconds()
	}
	rep.WarmupSeconds = cfg.Warmup.Seconds()
	rep.addConns(conns, launched)
	rep.addCandles(r.cfg, conns, launched)
	rep.addGroups(cfg, conns, launched, r.rcvBufKernel.Load())
	rep.addWindows(r.windows)
	rep.addServer(baseline, s0, s1)
	rep.finish()
	return rep, nil
}

// processCPU returns the user + system CPU time this process has used, in
// seconds.
func processCPU() float64 { return proc.CPUTime().Seconds() }

// measure waits out the measured window: d, or until a context ends, or
// until every connection that was up has been lost (it then reports true).
func (r *runner) measure(ctx, hardCtx context.Context, d time.Duration) (allLost bool) {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-end.C:
			return false
		case <-ctx.Done():
			return false
		case <-hardCtx.Done():
			return false
		case <-tick.C:
			if up := r.nOK.Load(); up > 0 && r.nDropped.Load() >= up {
				return true
			}
		}
	}
}

// rateText formats a connect rate for the progress log.
func rateText(rate float64) string {
	if rate <= 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g/s", rate)
}

// sleepCtx sleeps for d or until either context ends.
func sleepCtx(a, b context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.Done():
	case <-b.Done():
	}
}

// runner is the state shared by one run's connections.
type runner struct {
	cfg     Config
	bases   []*url.URL     // one per node; connection i uses bases[i mod n]
	clients []*http.Client // one per source address
	// slowClients are clients' twins for the slow connections: their
	// sockets read at -slow-rate (nil without -slow-share).
	slowClients []*http.Client
	dialers     []*net.Dialer // one per source address, as clients use them
	trans       []*http.Transport
	metrics     *http.Client

	phase    atomic.Int32
	stopping atomic.Bool     // set before connections are closed on purpose
	stopCtx  context.Context // cancelled at shutdown: ends SSE streams and HTTP workers
	nOK      atomic.Int64    // connections that completed their handshake
	nFail    atomic.Int64    // connection attempts that failed
	nDropped atomic.Int64    // connections lost before the run closed them

	windows      *ageWindows  // -window: ages per window (nil without)
	rcvBufKernel atomic.Int64 // -rcvbuf: SO_RCVBUF as the kernel reports it after setting it

	inFlight    atomic.Int64 // churn: attempts in flight
	maxInFlight atomic.Int64 // churn: the most attempts in flight at once
}

// conn is one connection (http mode: one worker). Its stats are written
// only by its own goroutine and read after done is closed.
type conn struct {
	id   int
	syms []string
	st   connStats
	done chan struct{}

	mu      sync.Mutex
	closeFn func() // graceful close (WebSocket 1000); set once connected
	killFn  func() // abrupt close
}

// setClosers registers c's close functions unless the run is already
// stopping, in which case it reports false and the caller closes at once.
func (r *runner) setClosers(c *conn, closeFn, killFn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.stopping.Load() {
		return false
	}
	c.closeFn, c.killFn = closeFn, killFn
	return true
}

// closers returns c's registered close functions (nil before connected).
func (c *conn) closers() (closeFn, killFn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeFn, c.killFn
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "quoteload: "+format+"\n", args...)
	}
}

// ramp starts the connections at the configured rate, at most
// DialConcurrency attempts in flight, and waits until every started one has
// connected or failed. It stops starting connections when ctx ends and
// returns how many it started (conns[:n]); the rest are never opened.
func (r *runner) ramp(ctx context.Context, conns []*conn) (n int) {
	var rampWG sync.WaitGroup
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	start := time.Now()
	var interval time.Duration
	if r.cfg.ConnectRate > 0 && r.cfg.Mode != "http" {
		interval = time.Duration(float64(time.Second) / r.cfg.ConnectRate)
	}
	progress := time.NewTicker(2 * time.Second)
	defer progress.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C

	run := r.runWS
	switch r.cfg.Mode {
	case "sse":
		run = r.runSSE
	case "http":
		run = r.runHTTP
	}
loop:
	for i, c := range conns {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		select {
		case <-progress.C:
			r.logf("ramp-up: %d/%d connected, %d failed", r.nOK.Load(), len(conns), r.nFail.Load())
		default:
		}
		var once sync.Once
		connected := func(ok bool) {
			once.Do(func() {
				if ok {
					r.nOK.Add(1)
				} else {
					r.nFail.Add(1)
				}
				<-sem
				rampWG.Done()
			})
		}
		rampWG.Add(1)
		n = i + 1
		go func() {
			defer close(c.done)
			defer connected(false) // a no-op when already reported
			run(ctx, c, connected)
		}()
	}
	waitDone := make(chan struct{})
	go func() {
		rampWG.Wait()
		close(waitDone)
	}()
	for {
		select {
		case <-waitDone:
			return n
		case <-progress.C:
			r.logf("ramp-up: %d/%d connected, %d failed", r.nOK.Load(), len(conns), r.nFail.Load())
		}
	}
}

// shutdown closes every started connection (WebSockets with 1000, streams
// and workers by cancelling stopCtx) and waits for their goroutines. When
// hardCtx ends first, the remaining connections are closed abruptly. It
// returns how many goroutines had still not ended after that.
func (r *runner) shutdown(hardCtx context.Context, stopCancel context.CancelFunc, conns []*conn) (unfinished int) {
	r.stopping.Store(true)
	stopCancel()

	// Graceful WebSocket closes, a bounded number at a time.
	work := make(chan *conn)
	var closers sync.WaitGroup
	for range min(128, max(1, len(conns))) {
		closers.Add(1)
		go func() {
			defer closers.Done()
			for c := range work {
				if closeFn, _ := c.closers(); closeFn != nil {
					closeFn()
				}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, c := range conns {
			select {
			case work <- c:
			case <-hardCtx.Done():
				return
			}
		}
	}()

	allDone := make(chan struct{})
	go func() {
		for _, c := range conns {
			<-c.done
		}
		closers.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
		return 0
	case <-hardCtx.Done():
	}
	for _, c := range conns {
		if _, killFn := c.closers(); killFn != nil {
			killFn()
		}
	}
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-allDone:
		return 0
	case <-grace.C:
	}
	for _, c := range conns {
		select {
		case <-c.done:
		default:
			unfinished++
		}
	}
	return unfinished
}
