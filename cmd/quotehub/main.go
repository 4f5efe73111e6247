// Command quotehub runs one node of the quotehub price hub.
//
// Configuration comes from QUOTEHUB_* environment variables, overridden by
// flags of the same meaning; run `quotehub -h` for the list.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/hub"
	"quotehub/refresher"
	"quotehub/refresher/upstream/sim"
	"quotehub/store/memory"
	"quotehub/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, os.Args[1:], os.LookupEnv, os.Stderr, nil)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "quotehub:", err)
		os.Exit(1)
	}
}

// Run starts a node and serves until ctx ends, then shuts down gracefully.
// ready, if not nil, receives the public address once the node listens.
func Run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer, ready chan<- string) error {
	cfg, err := LoadConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID()
	}
	log := newLogger(cfg, stderr)
	reg := prometheus.NewRegistry()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	var admin *http.Server
	if cfg.AdminAddr != "" {
		aln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on admin address %s: %w", cfg.AdminAddr, err)
		}
		admin = &http.Server{Handler: adminMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = admin.Serve(aln) }()
	}
	n, err := build(cfg, &log, reg)
	if err != nil {
		ln.Close()
		if admin != nil {
			_ = admin.Close()
		}
		return err
	}

	n.start(ln)
	log.Info().Str("addr", ln.Addr().String()).Str("admin", cfg.AdminAddr).Strs("providers", cfg.Providers).
		Int("catalogue", n.catalog.Len()).Msg("quotehub node started")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err = <-n.serveErr:
		log.Error().Err(err).Msg("server failed")
	}
	log.Info().Msg("shutting down")
	n.shutdown(cfg.ShutdownTimeout, &log)
	if admin != nil {
		_ = admin.Close()
	}
	log.Info().Msg("stopped")
	return err
}

// node is one wired quotehub node.
type node struct {
	catalog   *memory.Catalog
	hub       *hub.Hub
	refresher *refresher.Refresher
	web       *web.Server
	sims      []*sim.Provider

	serveErr      chan error
	stopRefresher context.CancelFunc
	refDone       chan struct{}
}

// start runs the refresher and serves on ln.
func (n *node) start(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopRefresher = cancel
	n.refDone = make(chan struct{})
	go func() { defer close(n.refDone); n.refresher.Run(ctx) }()
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.web.Serve(ln) }()
}

// shutdown stops the node in order: stop accepting and report not ready;
// close every WebSocket with 1001 and end every SSE stream; let plain
// requests end; then stop the refresher. It gives up at the timeout.
func (n *node) shutdown(timeout time.Duration, log *zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	webDone := make(chan error, 1)
	go func() { webDone <- n.web.Shutdown(ctx) }()
	if err := n.hub.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Int("connections", n.hub.Connections()).Msg("connections still open at the shutdown deadline")
	}
	if err := <-webDone; err != nil {
		log.Warn().Err(err).Msg("requests still running at the shutdown deadline")
	}
	n.stopRefresher()
	select {
	case <-n.refDone:
	case <-ctx.Done():
		log.Warn().Msg("fetches still running at the shutdown deadline")
	}
}

// build wires the embedded default stores, the providers, the refresher,
// the hub and the web server.
func build(cfg Config, log *zerolog.Logger, reg *prometheus.Registry) (*node, error) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	symbols := sim.Catalog()
	if cfg.SimSymbols > 0 {
		symbols = append(symbols, sim.Synthetic(cfg.SimSymbols)...)
	}
	catalog := memory.NewCatalog(symbols)
	cache := memory.NewCache()
	bus := memory.NewBus()
	active := memory.NewActiveSet()

	var sources []refresher.Source
	var sims []*sim.Provider
	for range cfg.Providers { // validated: sim only
		p := sim.New(sim.Options{
			Symbols: symbols, Seed: cfg.SimSeed, Latency: cfg.SimLatency, FailRate: cfg.SimFailRate,
			Down: cfg.SimDown, ChangeEveryFetch: cfg.SimEveryTick,
		})
		sims = append(sims, p)
		sources = append(sources, refresher.Source{Provider: p, Interval: cfg.RefreshInterval})
	}

	var h *hub.Hub
	refLog := log.With().Str("component", "refresher").Logger()
	ref, err := refresher.New(refresher.Options{
		Cache: cache, Bus: bus, Active: active, Catalog: catalog, Sources: sources,
		Local:     func() []string { return h.Symbols() },
		Freshness: cfg.Freshness, ActiveWindow: cfg.ActiveWindow, Heartbeat: cfg.Heartbeat,
		FetchTimeout: cfg.FetchTimeout, UpstreamTimeout: cfg.UpstreamTimeout,
		Metrics: refresher.NewMetrics(reg), Logger: &refLog,
	})
	if err != nil {
		return nil, err
	}
	hubLog := log.With().Str("component", "hub").Logger()
	h = hub.New(hub.Options{
		Cache: cache, Catalog: catalog, Node: cfg.NodeID,
		MaxSymbols: cfg.MaxSymbols, MaxMessageBytes: cfg.MaxMessageBytes, MaxConnections: cfg.MaxConnections,
		OpsPerSecond: cfg.OpsPerSecond, OpsBurst: int(2 * cfg.OpsPerSecond), SlowTimeout: cfg.SlowConsumer,
		OnActive: func(s string) { bus.Watch(s); ref.Activate(s) },
		OnIdle:   func(s string) { bus.Unwatch(s); ref.Deactivate(s) },
		Metrics:  hub.NewMetrics(reg), Logger: &hubLog,
	})
	bus.Handle(h.Publish)
	srv, err := web.New(web.Options{
		Hub: h, Reader: ref, Catalog: catalog, Gatherer: reg, Registerer: reg,
		AllowedOrigins: cfg.AllowedOrigins, PingInterval: cfg.PingInterval, PongTimeout: cfg.PongTimeout,
		SSEKeepalive: cfg.SSEKeepalive, Logger: log,
		Checks: map[string]quotehub.HealthChecker{},
	})
	if err != nil {
		_ = h.Shutdown(context.Background())
		return nil, err
	}
	return &node{catalog: catalog, hub: h, refresher: ref, web: srv, sims: sims}, nil
}

func newLogger(cfg Config, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	console := cfg.LogFormat == "console"
	if f, ok := w.(*os.File); ok && cfg.LogFormat == "auto" {
		console = isatty.IsTerminal(f.Fd())
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("node", cfg.NodeID).Logger()
}

func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "quotehub"
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// adminMux serves pprof; it is bound to the admin address only.
func adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
