package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of a node. Each field is set, in rising order of
// precedence, from its default, its QUOTEHUB_* environment variable and its
// command-line flag.
type Config struct {
	Addr            string
	AdminAddr       string
	NodeID          string
	Providers       []string
	Freshness       time.Duration
	ActiveWindow    time.Duration
	Heartbeat       time.Duration
	RefreshInterval time.Duration
	FetchTimeout    time.Duration
	UpstreamTimeout time.Duration
	MaxSymbols      int
	MaxMessageBytes int
	MaxConnections  int
	OpsPerSecond    float64
	SlowConsumer    time.Duration
	WriteDelay      time.Duration
	UnsentLimit     int
	Writers         int // WebSocket writer pool size; 0 = one per CPU, -1 = none
	PingInterval    time.Duration
	PongTimeout     time.Duration
	SSEKeepalive    time.Duration
	AllowedOrigins  []string
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	RedisURL           string
	RedisPrefix        string
	RedisCluster       bool
	RedisShardedPubSub bool
	LeaseTTL           time.Duration
	RefreshSlots       int
	BusShards          int

	UpbitURL      string
	UpbitWSURL    string
	UpbitMode     string
	UpbitRate     float64
	UpbitBatch    int
	UpbitTimeout  time.Duration
	UpbitInterval time.Duration
	YahooURL      string
	YahooRate     float64
	YahooBatch    int
	YahooParallel int
	YahooTimeout  time.Duration
	YahooInterval time.Duration

	SimSeed      int64
	SimSymbols   int
	SimLatency   time.Duration
	SimFailRate  float64
	SimDown      bool
	SimEveryTick bool
	SimBatch     int
}

// setting describes one configuration knob; the table below is the single
// source of the flags, the environment variables and the README's table.
type setting struct {
	flag, env, def, help string
	set                  func(c *Config, v string) error
	// kind marks booleans (a bare -flag means true) and settings whose
	// empty value means something (set-but-empty then applies); for the
	// others an empty variable counts as unset.
	kind settingKind
}

type settingKind int

const (
	plain     settingKind = iota
	clearable             // an empty value is meaningful (e.g. disables)
	isBool                // a bare -flag sets true
)

// flagValue adapts a setting to flag.Value; booleans also implement
// IsBoolFlag so that a bare -flag means true.
type flagValue struct {
	c *Config
	s setting
}

func (v flagValue) String() string     { return "" }
func (v flagValue) Set(x string) error { return v.s.set(v.c, x) }
func (v flagValue) IsBoolFlag() bool   { return v.s.kind == isBool }

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func list(dst func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		*dst(c) = out
		return nil
	}
}

func dur(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < 0 {
			return errors.New("must not be negative")
		}
		*dst(c) = d
		return nil
	}
}

func integer(dst func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		if n < 0 {
			return errors.New("must not be negative")
		}
		*dst(c) = n
		return nil
	}
}

// writers parses -writers: auto, off, or a count from 1 to 1024.
func writers(c *Config, v string) error {
	switch v {
	case "auto":
		c.Writers = 0
		return nil
	case "off":
		c.Writers = -1
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return errors.New("want auto, off or 1 … 1024")
	}
	c.Writers = n
	return nil
}

func float(dst func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("must be a finite number")
		}
		*dst(c) = f
		return nil
	}
}

func boolean(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		*dst(c) = b
		return nil
	}
}

var settings = []setting{
	{"addr", "QUOTEHUB_ADDR", ":8080", "public listen address (WebSocket, SSE, HTTP)", str(func(c *Config) *string { return &c.Addr }), plain},
	{"admin-addr", "QUOTEHUB_ADMIN_ADDR", "127.0.0.1:6060", "pprof listen address; never the public port; empty disables", str(func(c *Config) *string { return &c.AdminAddr }), clearable},
	{"node-id", "QUOTEHUB_NODE_ID", "", "this node's name in logs and welcome frames (default: host name + random suffix)", str(func(c *Config) *string { return &c.NodeID }), plain},
	{"providers", "QUOTEHUB_PROVIDERS", "sim", "upstream providers to run: sim, or upbit and/or yahoo (KRW-* markets from Upbit, stocks from Yahoo)", list(func(c *Config) *[]string { return &c.Providers }), plain},
	{"freshness", "QUOTEHUB_FRESHNESS", "5s", "age under which a cached quote is fresh", dur(func(c *Config) *time.Duration { return &c.Freshness }), plain},
	{"active-window", "QUOTEHUB_ACTIVE_WINDOW", "5m", "how long a symbol stays active after its last use", dur(func(c *Config) *time.Duration { return &c.ActiveWindow }), plain},
	{"heartbeat", "QUOTEHUB_HEARTBEAT", "30s", "how often a node re-touches its active symbols", dur(func(c *Config) *time.Duration { return &c.Heartbeat }), plain},
	{"refresh-interval", "QUOTEHUB_REFRESH_INTERVAL", "1s", "how often an active symbol is refreshed", dur(func(c *Config) *time.Duration { return &c.RefreshInterval }), plain},
	{"fetch-timeout", "QUOTEHUB_FETCH_TIMEOUT", "2s", "how long a read that misses waits for the upstream", dur(func(c *Config) *time.Duration { return &c.FetchTimeout }), plain},
	{"upstream-timeout", "QUOTEHUB_UPSTREAM_TIMEOUT", "5s", "longest one upstream request may take", dur(func(c *Config) *time.Duration { return &c.UpstreamTimeout }), plain},
	{"max-symbols", "QUOTEHUB_MAX_SYMBOLS", "200", "symbols per connection (and per subscribe)", integer(func(c *Config) *int { return &c.MaxSymbols }), plain},
	{"max-message-bytes", "QUOTEHUB_MAX_MESSAGE_BYTES", "4096", "largest client frame; larger closes with 1009", integer(func(c *Config) *int { return &c.MaxMessageBytes }), plain},
	{"max-connections", "QUOTEHUB_MAX_CONNECTIONS", "100000", "connections per node; more are refused (1013 / 429)", integer(func(c *Config) *int { return &c.MaxConnections }), plain},
	{"ops-per-second", "QUOTEHUB_OPS_PER_SECOND", "200", "requests per second one WebSocket may send (burst: twice that)", float(func(c *Config) *float64 { return &c.OpsPerSecond }), plain},
	{"slow-consumer-timeout", "QUOTEHUB_SLOW_CONSUMER_TIMEOUT", "30s", "a client that drains nothing this long is closed with 4000", dur(func(c *Config) *time.Duration { return &c.SlowConsumer }), plain},
	{"write-delay", "QUOTEHUB_WRITE_DELAY", "0s", "how long a client's writer waits to gather more quotes into one frame (adds that much latency)", dur(func(c *Config) *time.Duration { return &c.WriteDelay }), plain},
	{"unsent-limit", "QUOTEHUB_UNSENT_LIMIT", "16384", "bytes a client's socket may hold unsent; the rest waits in its outbox, where newer quotes replace older (0: the kernel's send buffer)", integer(func(c *Config) *int { return &c.UnsentLimit }), plain},
	{"writers", "QUOTEHUB_WRITERS", "auto", "goroutines that write to WebSockets (auto: one per CPU; off: a goroutine per connection while it writes)", writers, plain},
	{"ping-interval", "QUOTEHUB_PING_INTERVAL", "25s", "WebSocket ping interval (a pong must come within 15 s)", dur(func(c *Config) *time.Duration { return &c.PingInterval }), plain},
	{"pong-timeout", "QUOTEHUB_PONG_TIMEOUT", "15s", "a WebSocket that has read everything before a ping and does not answer it this long is closed", dur(func(c *Config) *time.Duration { return &c.PongTimeout }), plain},
	{"sse-keepalive", "QUOTEHUB_SSE_KEEPALIVE", "15s", "longest silence on an SSE stream before a keepalive comment", dur(func(c *Config) *time.Duration { return &c.SSEKeepalive }), plain},
	{"allowed-origins", "QUOTEHUB_ALLOWED_ORIGINS", "", "comma-separated origin patterns allowed for WebSocket and CORS (default: same origin only)", list(func(c *Config) *[]string { return &c.AllowedOrigins }), clearable},
	{"shutdown-timeout", "QUOTEHUB_SHUTDOWN_TIMEOUT", "10s", "longest a graceful shutdown may take", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout }), plain},
	{"log-level", "QUOTEHUB_LOG_LEVEL", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel }), plain},
	{"log-format", "QUOTEHUB_LOG_FORMAT", "auto", "json, console, or auto (console on a terminal, else json)", str(func(c *Config) *string { return &c.LogFormat }), plain},
	{"redis-url", "QUOTEHUB_REDIS_URL", "", "Redis for cache, active set, bus and leases, e.g. redis://127.0.0.1:6379/0 (empty: embedded memory, one node)", str(func(c *Config) *string { return &c.RedisURL }), clearable},
	{"redis-prefix", "QUOTEHUB_REDIS_PREFIX", "qh:", "prefix of every Redis key and channel (one cluster per prefix)", str(func(c *Config) *string { return &c.RedisPrefix }), plain},
	{"redis-cluster", "QUOTEHUB_REDIS_CLUSTER", "false", "QUOTEHUB_REDIS_URL names a Redis Cluster (redis://host:port?addr=host2:port2...)", boolean(func(c *Config) *bool { return &c.RedisCluster }), isBool},
	{"redis-sharded-pubsub", "QUOTEHUB_REDIS_SHARDED_PUBSUB", "false", "use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+), for Redis Cluster", boolean(func(c *Config) *bool { return &c.RedisShardedPubSub }), isBool},
	{"lease-ttl", "QUOTEHUB_LEASE_TTL", "6s", "refresh lease time to live; a dead node's symbols are taken over within about 1.5 of it", dur(func(c *Config) *time.Duration { return &c.LeaseTTL }), plain},
	{"refresh-slots", "QUOTEHUB_REFRESH_SLOTS", "64", "slots symbols hash onto for refresh ownership; the same on every node", integer(func(c *Config) *int { return &c.RefreshSlots }), plain},
	{"bus-shards", "QUOTEHUB_BUS_SHARDS", "16", "pub/sub shards (one subscriber connection each); the same on every node", integer(func(c *Config) *int { return &c.BusShards }), plain},
	{"upbit-url", "QUOTEHUB_UPBIT_URL", "https://api.upbit.com", "Upbit REST base URL (point it at a proxy or a recorded fake)", str(func(c *Config) *string { return &c.UpbitURL }), plain},
	{"upbit-ws-url", "QUOTEHUB_UPBIT_WS_URL", "wss://api.upbit.com/websocket/v1", "Upbit WebSocket URL", str(func(c *Config) *string { return &c.UpbitWSURL }), plain},
	{"upbit-mode", "QUOTEHUB_UPBIT_MODE", "push", "push (WebSocket stream, REST while it is down) or poll (REST only)", str(func(c *Config) *string { return &c.UpbitMode }), plain},
	{"upbit-rate", "QUOTEHUB_UPBIT_RATE", "10", "Upbit REST requests per second at most (Upbit allows 10 per IP)", float(func(c *Config) *float64 { return &c.UpbitRate }), plain},
	{"upbit-batch", "QUOTEHUB_UPBIT_BATCH", "100", "markets per Upbit /v1/ticker request", integer(func(c *Config) *int { return &c.UpbitBatch }), plain},
	{"upbit-timeout", "QUOTEHUB_UPBIT_TIMEOUT", "3s", "timeout of one Upbit request", dur(func(c *Config) *time.Duration { return &c.UpbitTimeout }), plain},
	{"upbit-interval", "QUOTEHUB_UPBIT_INTERVAL", "0s", "refresh interval of Upbit symbols when polled (0: QUOTEHUB_REFRESH_INTERVAL)", dur(func(c *Config) *time.Duration { return &c.UpbitInterval }), plain},
	{"yahoo-url", "QUOTEHUB_YAHOO_URL", "https://query1.finance.yahoo.com", "Yahoo Finance chart API base URL", str(func(c *Config) *string { return &c.YahooURL }), plain},
	{"yahoo-rate", "QUOTEHUB_YAHOO_RATE", "5", "Yahoo requests per second at most (one request per symbol)", float(func(c *Config) *float64 { return &c.YahooRate }), plain},
	{"yahoo-batch", "QUOTEHUB_YAHOO_BATCH", "20", "symbols per Yahoo fetch (each is its own request)", integer(func(c *Config) *int { return &c.YahooBatch }), plain},
	{"yahoo-concurrency", "QUOTEHUB_YAHOO_CONCURRENCY", "4", "Yahoo requests in flight at most", integer(func(c *Config) *int { return &c.YahooParallel }), plain},
	{"yahoo-timeout", "QUOTEHUB_YAHOO_TIMEOUT", "3s", "timeout of one Yahoo request", dur(func(c *Config) *time.Duration { return &c.YahooTimeout }), plain},
	{"yahoo-interval", "QUOTEHUB_YAHOO_INTERVAL", "0s", "refresh interval of Yahoo symbols (0: QUOTEHUB_REFRESH_INTERVAL)", dur(func(c *Config) *time.Duration { return &c.YahooInterval }), plain},
	{"sim-seed", "QUOTEHUB_SIM_SEED", "1", "seed of the sim provider's random walk", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		c.SimSeed = n
		return err
	}, plain},
	{"sim-symbols", "QUOTEHUB_SIM_SYMBOLS", "0", "extra synthetic symbols (SYN-000001 …) in the sim catalogue", integer(func(c *Config) *int { return &c.SimSymbols }), plain},
	{"sim-latency", "QUOTEHUB_SIM_LATENCY", "0s", "delay the sim provider adds to every fetch (slow upstream)", dur(func(c *Config) *time.Duration { return &c.SimLatency }), plain},
	{"sim-fail-rate", "QUOTEHUB_SIM_FAIL_RATE", "0", "fraction of sim fetches that fail (flaky upstream)", float(func(c *Config) *float64 { return &c.SimFailRate }), plain},
	{"sim-down", "QUOTEHUB_SIM_DOWN", "false", "every sim fetch fails (upstream down)", boolean(func(c *Config) *bool { return &c.SimDown }), isBool},
	{"sim-batch", "QUOTEHUB_SIM_BATCH", "100", "most symbols one sim fetch carries", integer(func(c *Config) *int { return &c.SimBatch }), plain},
	{"sim-every-tick", "QUOTEHUB_SIM_EVERY_TICK", "false", "every sim symbol changes on every fetch (benchmarks)", boolean(func(c *Config) *bool { return &c.SimEveryTick }), isBool},
}

// LoadConfig builds the configuration from defaults, the environment (read
// through lookupEnv, e.g. os.LookupEnv) and args. It returns flag.ErrHelp
// after printing usage for -h.
func LoadConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("quotehub", flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range settings {
		v := s.def
		if e, ok := lookupEnv(s.env); ok && (e != "" || s.kind == clearable) {
			v = e
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
		fs.Var(flagValue{&c, s}, s.flag, s.help+" (env "+s.env+", default "+strconv.Quote(s.def)+")")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	positive("QUOTEHUB_FRESHNESS", c.Freshness)
	positive("QUOTEHUB_ACTIVE_WINDOW", c.ActiveWindow)
	positive("QUOTEHUB_HEARTBEAT", c.Heartbeat)
	positive("QUOTEHUB_REFRESH_INTERVAL", c.RefreshInterval)
	positive("QUOTEHUB_FETCH_TIMEOUT", c.FetchTimeout)
	positive("QUOTEHUB_UPSTREAM_TIMEOUT", c.UpstreamTimeout)
	positive("QUOTEHUB_SLOW_CONSUMER_TIMEOUT", c.SlowConsumer)
	positive("QUOTEHUB_PING_INTERVAL", c.PingInterval)
	positive("QUOTEHUB_PONG_TIMEOUT", c.PongTimeout)
	positive("QUOTEHUB_SSE_KEEPALIVE", c.SSEKeepalive)
	positive("QUOTEHUB_SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.UnsentLimit < 0 {
		errs = append(errs, errors.New("QUOTEHUB_UNSENT_LIMIT must not be negative"))
	}
	if c.MaxSymbols < 1 {
		errs = append(errs, errors.New("QUOTEHUB_MAX_SYMBOLS must be at least 1"))
	}
	if c.MaxMessageBytes < 256 {
		errs = append(errs, errors.New("QUOTEHUB_MAX_MESSAGE_BYTES must be at least 256"))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, errors.New("QUOTEHUB_MAX_CONNECTIONS must be at least 1"))
	}
	if c.OpsPerSecond <= 0 {
		errs = append(errs, errors.New("QUOTEHUB_OPS_PER_SECOND must be positive"))
	}
	if c.SimBatch < 1 {
		errs = append(errs, errors.New("QUOTEHUB_SIM_BATCH must be at least 1"))
	}
	if c.SimFailRate < 0 || c.SimFailRate > 1 {
		errs = append(errs, errors.New("QUOTEHUB_SIM_FAIL_RATE must be within [0, 1]"))
	}
	positive("QUOTEHUB_LEASE_TTL", c.LeaseTTL)
	if c.LeaseTTL > 0 && c.LeaseTTL < 300*time.Millisecond {
		errs = append(errs, errors.New("QUOTEHUB_LEASE_TTL must be at least 300ms"))
	}
	if c.RefreshSlots < 1 || c.RefreshSlots > 16384 {
		errs = append(errs, errors.New("QUOTEHUB_REFRESH_SLOTS must be within 1..16384"))
	}
	if c.BusShards < 1 || c.BusShards > 1024 {
		errs = append(errs, errors.New("QUOTEHUB_BUS_SHARDS must be within 1..1024"))
	}
	if c.RedisURL == "" && (c.RedisCluster || c.RedisShardedPubSub) {
		errs = append(errs, errors.New("QUOTEHUB_REDIS_CLUSTER and QUOTEHUB_REDIS_SHARDED_PUBSUB need QUOTEHUB_REDIS_URL"))
	}
	if c.RedisURL != "" && c.RedisPrefix == "" {
		errs = append(errs, errors.New("QUOTEHUB_REDIS_PREFIX must not be empty"))
	}
	for _, r := range c.NodeID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			errs = append(errs, fmt.Errorf("QUOTEHUB_NODE_ID %q: use letters, digits and - _ . :", c.NodeID))
			break
		}
	}
	if len(c.NodeID) > 64 {
		errs = append(errs, errors.New("QUOTEHUB_NODE_ID is longer than 64 characters"))
	}
	if c.Heartbeat >= c.ActiveWindow {
		errs = append(errs, errors.New("QUOTEHUB_HEARTBEAT must be shorter than QUOTEHUB_ACTIVE_WINDOW, or watched symbols would drop out"))
	}
	if len(c.Providers) == 0 {
		errs = append(errs, errors.New("QUOTEHUB_PROVIDERS names no provider"))
	}
	seen := map[string]bool{}
	for _, p := range c.Providers {
		switch {
		case p != "sim" && p != "upbit" && p != "yahoo":
			errs = append(errs, fmt.Errorf("QUOTEHUB_PROVIDERS: unknown provider %q (available: sim, upbit, yahoo)", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("QUOTEHUB_PROVIDERS names %q twice", p))
		}
		seen[p] = true
	}
	if c.UpbitMode != "push" && c.UpbitMode != "poll" {
		errs = append(errs, fmt.Errorf("QUOTEHUB_UPBIT_MODE: %q is not push or poll", c.UpbitMode))
	}
	for name, r := range map[string]float64{"QUOTEHUB_UPBIT_RATE": c.UpbitRate, "QUOTEHUB_YAHOO_RATE": c.YahooRate} {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	for name, n := range map[string]int{"QUOTEHUB_UPBIT_BATCH": c.UpbitBatch, "QUOTEHUB_YAHOO_BATCH": c.YahooBatch, "QUOTEHUB_YAHOO_CONCURRENCY": c.YahooParallel} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	positive("QUOTEHUB_UPBIT_TIMEOUT", c.UpbitTimeout)
	positive("QUOTEHUB_YAHOO_TIMEOUT", c.YahooTimeout)
	for name, u := range map[string]string{"QUOTEHUB_UPBIT_URL": c.UpbitURL, "QUOTEHUB_UPBIT_WS_URL": c.UpbitWSURL, "QUOTEHUB_YAHOO_URL": c.YahooURL} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute URL", name, u))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("QUOTEHUB_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("QUOTEHUB_LOG_FORMAT: %q is not auto, json or console", c.LogFormat))
	}
	return errors.Join(errs...)
}
