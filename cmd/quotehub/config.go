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

// clearable are the settings whose empty value means something (it
// disables or empties them); for the others an empty variable counts as
// unset.
var clearable = map[string]bool{"admin-addr": true, "allowed-origins": true, "redis-url": true}

// flagSet defines every setting of c as a flag, with its default and its
// help. It is the single source of the flags, of the environment variables
// (envName) and of the README's table.
func (c *Config) flagSet(out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("quotehub", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", ":8080", "public listen address (WebSocket, SSE, HTTP)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:6060", "pprof listen address; never the public port; empty disables")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's name in logs and welcome frames (default: host name + random suffix)")
	c.Providers = []string{"sim"} // the default: fs.Var reads it
	fs.Var((*list)(&c.Providers), "providers", "upstream providers to run: sim, or upbit and/or yahoo (KRW-* markets from Upbit, stocks from Yahoo)")
	fs.DurationVar(&c.Freshness, "freshness", 5*time.Second, "age under which a cached quote is fresh")
	fs.DurationVar(&c.ActiveWindow, "active-window", 5*time.Minute, "how long a symbol stays active after its last use")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 30*time.Second, "how often a node re-touches its active symbols")
	fs.DurationVar(&c.RefreshInterval, "refresh-interval", time.Second, "how often an active symbol is refreshed")
	fs.DurationVar(&c.FetchTimeout, "fetch-timeout", 2*time.Second, "how long a read that misses waits for the upstream")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", 5*time.Second, "longest one upstream request may take")
	fs.IntVar(&c.MaxSymbols, "max-symbols", 200, "symbols per connection (and per subscribe)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", 4096, "largest client frame; larger closes with 1009")
	fs.IntVar(&c.MaxConnections, "max-connections", 100000, "connections per node; more are refused (1013 / 429)")
	fs.Float64Var(&c.OpsPerSecond, "ops-per-second", 200, "requests per second one WebSocket may send (burst: twice that)")
	fs.DurationVar(&c.SlowConsumer, "slow-consumer-timeout", 30*time.Second, "a client that drains nothing this long is closed with 4000")
	fs.DurationVar(&c.WriteDelay, "write-delay", 0, "how long a client's writer waits to gather more quotes into one frame (adds that much latency)")
	fs.Var((*writers)(&c.Writers), "writers", "goroutines that write to WebSockets (auto: one per CPU; off: a goroutine per connection while it writes)")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping interval (a pong must come within 15 s)")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", 15*time.Second, "a WebSocket that does not answer a ping this long is closed")
	fs.DurationVar(&c.SSEKeepalive, "sse-keepalive", 15*time.Second, "longest silence on an SSE stream before a keepalive comment")
	fs.Var((*list)(&c.AllowedOrigins), "allowed-origins", "comma-separated origin patterns allowed for WebSocket and CORS (default: same origin only)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "longest a graceful shutdown may take")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "json, console, or auto (console on a terminal, else json)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis for cache, active set, bus and leases, e.g. redis://127.0.0.1:6379/0 (empty: embedded memory, one node)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "qh:", "prefix of every Redis key and channel (one cluster per prefix)")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "QUOTEHUB_REDIS_URL names a Redis Cluster (redis://host:port?addr=host2:port2...)")
	fs.BoolVar(&c.RedisShardedPubSub, "redis-sharded-pubsub", false, "use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+), for Redis Cluster")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 6*time.Second, "refresh lease time to live; a dead node's symbols are taken over within about 1.5 of it")
	fs.IntVar(&c.RefreshSlots, "refresh-slots", 64, "slots symbols hash onto for refresh ownership; the same on every node")
	fs.IntVar(&c.BusShards, "bus-shards", 16, "pub/sub shards (one subscriber connection each); the same on every node")
	fs.StringVar(&c.UpbitURL, "upbit-url", "https://api.upbit.com", "Upbit REST base URL (point it at a proxy or a recorded fake)")
	fs.StringVar(&c.UpbitWSURL, "upbit-ws-url", "wss://api.upbit.com/websocket/v1", "Upbit WebSocket URL")
	fs.StringVar(&c.UpbitMode, "upbit-mode", "push", "push (WebSocket stream, REST while it is down) or poll (REST only)")
	fs.Float64Var(&c.UpbitRate, "upbit-rate", 10, "Upbit REST requests per second at most (Upbit allows 10 per IP)")
	fs.IntVar(&c.UpbitBatch, "upbit-batch", 100, "markets per Upbit /v1/ticker request")
	fs.DurationVar(&c.UpbitTimeout, "upbit-timeout", 3*time.Second, "timeout of one Upbit request")
	fs.DurationVar(&c.UpbitInterval, "upbit-interval", 0, "refresh interval of Upbit symbols when polled (0: QUOTEHUB_REFRESH_INTERVAL)")
	fs.StringVar(&c.YahooURL, "yahoo-url", "https://query1.finance.yahoo.com", "Yahoo Finance chart API base URL")
	fs.Float64Var(&c.YahooRate, "yahoo-rate", 5, "Yahoo requests per second at most (one request per symbol)")
	fs.IntVar(&c.YahooBatch, "yahoo-batch", 20, "symbols per Yahoo fetch (each is its own request)")
	fs.IntVar(&c.YahooParallel, "yahoo-concurrency", 4, "Yahoo requests in flight at most")
	fs.DurationVar(&c.YahooTimeout, "yahoo-timeout", 3*time.Second, "timeout of one Yahoo request")
	fs.DurationVar(&c.YahooInterval, "yahoo-interval", 0, "refresh interval of Yahoo symbols (0: QUOTEHUB_REFRESH_INTERVAL)")
	fs.Int64Var(&c.SimSeed, "sim-seed", 1, "seed of the sim provider's random walk")
	fs.IntVar(&c.SimSymbols, "sim-symbols", 0, "extra synthetic symbols (SYN-000001 …) in the sim catalogue")
	fs.DurationVar(&c.SimLatency, "sim-latency", 0, "delay the sim provider adds to every fetch (slow upstream)")
	fs.Float64Var(&c.SimFailRate, "sim-fail-rate", 0, "fraction of sim fetches that fail (flaky upstream)")
	fs.BoolVar(&c.SimDown, "sim-down", false, "every sim fetch fails (upstream down)")
	fs.IntVar(&c.SimBatch, "sim-batch", 100, "most symbols one sim fetch carries")
	fs.BoolVar(&c.SimEveryTick, "sim-every-tick", false, "every sim symbol changes on every fetch (benchmarks)")
	return fs
}

// envName is the environment variable of a flag: QUOTEHUB_ and the flag's
// name upper-cased, dashes as underscores (-admin-addr: QUOTEHUB_ADMIN_ADDR).
func envName(flagName string) string {
	return "QUOTEHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// LoadConfig builds the configuration from defaults, the environment (read
// through lookupEnv, e.g. os.LookupEnv) and args. It returns flag.ErrHelp
// after printing usage for -h.
func LoadConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	var c Config
	fs := c.flagSet(out)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		f.Usage += " (env " + env + ")"
		if g, ok := f.Value.(flag.Getter); ok {
			f.Value = checked{g}
		}
		v, ok := lookupEnv(env)
		if err != nil || !ok || (v == "" && !clearable[f.Name]) {
			return
		}
		if serr := f.Value.Set(v); serr != nil {
			err = fmt.Errorf("%s=%q: %w", env, v, serr)
		}
	})
	if err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

// checked wraps a standard flag value: its errors say what is wanted, and
// it refuses what the type accepts but no setting does (negative counts
// and durations, NaN and infinite numbers).
type checked struct{ flag.Getter }

func (v checked) Set(s string) error {
	if err := v.Getter.Set(s); err != nil {
		return fmt.Errorf("want %s (%w)", wants[fmt.Sprintf("%T", v.Get())], err)
	}
	switch x := v.Get().(type) {
	case int:
		if x < 0 {
			return errNegative
		}
	case time.Duration:
		if x < 0 {
			return errNegative
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return errors.New("must be a finite number")
		}
	}
	return nil
}

// wants names, by Go type, the values a flag accepts.
var wants = map[string]string{
	"bool": "true or false", "int": "a whole number", "int64": "a whole number",
	"float64": "a number", "time.Duration": "a duration such as 500ms or 5m",
}

// IsBoolFlag lets a bare -flag set a boolean true.
func (v checked) IsBoolFlag() bool { _, ok := v.Get().(bool); return ok }

// String is the wrapped value's; flag.PrintDefaults also calls it on a
// zero checked.
func (v checked) String() string {
	if v.Getter == nil {
		return ""
	}
	return v.Getter.String()
}

var errNegative = errors.New("must not be negative")

// list is a comma-separated flag value; blanks around items and empty items
// are dropped.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	*l = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// writers is -writers: auto (0), off (-1), or a count from 1 to 1024.
type writers int

func (w *writers) String() string {
	switch *w {
	case 0:
		return "auto"
	case -1:
		return "off"
	}
	return strconv.Itoa(int(*w))
}

func (w *writers) Set(v string) error {
	switch v {
	case "auto":
		*w = 0
		return nil
	case "off":
		*w = -1
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return errors.New("want auto, off or 1 … 1024")
	}
	*w = writers(n)
	return nil
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
