// Command quotehub runs one node of the quotehub price hub.
//
// Configuration comes from QUOTEHUB_* environment variables, overridden by
// flags of the same meaning; run `quotehub -h` for the list.
//
// `quotehub token -sub USER [-ttl 1h]` prints a token for trying a node
// out, signed with the node's HS256 secret (see runToken).
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
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "token" {
		err = runToken(os.Args[2:], os.LookupEnv, os.Stdout, os.Stderr)
	} else {
		err = Run(ctx, os.Args[1:], os.LookupEnv, os.Stderr, nil)
	}
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
	started := time.Now()
	var admin *http.Server
	mux := adminMux(reg)
	if cfg.AdminAddr != "" {
		aln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on admin address %s: %w", cfg.AdminAddr, err)
		}
		admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

	mux.Handle("/status", n.statusHandler(cfg, started, reg))
	if n.cert != nil {
		stopReload := reloadOnHUP(n.cert, &log)
		defer stopReload()
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

// adminMux serves pprof, the metrics of reg and, once the node is built,
// /status; it is bound to the admin address only.
func adminMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
