package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"quotehub/auth"
	"quotehub/store/usercache"
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
	MaxCandles      int // candle streams per connection; 0: twice MaxSymbols
	MaxMessageBytes int
	MaxConnections  int
	OpsPerSecond    float64
	SlowConsumer    time.Duration
	WriteDelay      time.Duration
	UnsentLimit     int
	UnreadAge       time.Duration
	SSEUnreadAge    time.Duration
	Writers         int // WebSocket writer pool size; 0 = one per CPU, -1 = none
	PingInterval    time.Duration
	PongTimeout     time.Duration
	SSEKeepalive    time.Duration
	AllowedOrigins  []string
	Security        Security
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
	DataDir         string

	JWTSecret    string
	JWTPublicKey string
	JWTJWKSURL   string
	JWTIssuer    string
	JWTAudience  string
	AuthRequired bool

	RedisURL           string
	RedisPrefix        string
	RedisCluster       bool
	RedisShardedPubSub bool
	LeaseTTL           time.Duration
	RefreshSlots       int
	BusShards          int

	MySQLDSN          string
	MySQLMaxOpen      int
	MySQLMaxIdle      int
	MySQLConnLifetime time.Duration
	StoreTimeout      time.Duration
	PortfolioCache    int

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
var clearable = map[string]bool{"admin-addr": true, "allowed-origins": true, "redis-url": true, "mysql-dsn": true, "limit-exempt": true}

// devSecretFile is the file in the data directory that holds the HS256
// secret a node creates for itself when no JWT key is configured.
const devSecretFile = "jwt-secret"

// flagSet defines every setting of c as a flag, with its default and its
// help. It is the single source of the flags, of the environment variables
// (envName) and of the README's table.
func (c *Config) flagSet(out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("quotehub", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", ":8080", "public listen address (WebSocket, SSE, HTTP)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:6060", "admin listen address (pprof, /status, /metrics); loopback only unless QUOTEHUB_ADMIN_PUBLIC; never the public port; empty disables")
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
	fs.IntVar(&c.MaxCandles, "max-candle-streams", 0, "candle streams (symbol × interval) per connection; 0: twice max-symbols")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", 4096, "largest client frame; larger closes with 1009")
	fs.IntVar(&c.MaxConnections, "max-connections", 100000, "connections per node; more are refused (1013 / 429)")
	fs.Float64Var(&c.OpsPerSecond, "ops-per-second", 200, "requests per second one WebSocket may send (burst: twice that)")
	fs.DurationVar(&c.SlowConsumer, "slow-consumer-timeout", 30*time.Second, "a client that drains nothing this long is closed with 4000")
	fs.DurationVar(&c.WriteDelay, "write-delay", 0, "how long a client's writer waits to gather more quotes into one frame (adds that much latency)")
	fs.IntVar(&c.UnsentLimit, "unsent-limit", 16384, "bytes a client's socket may hold unsent; the rest waits in its outbox, where newer quotes replace older (0: the kernel's send buffer)")
	fs.DurationVar(&c.UnreadAge, "unread-age", time.Second, "a WebSocket is not written to while the oldest byte its client has not confirmed reading (a ping answered once read up to it) went out longer ago than this; meanwhile newer quotes replace older in its outbox (0: off)")
	fs.DurationVar(&c.SSEUnreadAge, "sse-unread-age", 0, "an SSE stream is not written to while what its client has not read (in flight and in its receive buffer, as its TCP window shows) would take it longer than this at the pace it reads; meanwhile newer quotes replace older in its outbox (0: off)")
	fs.Var((*writers)(&c.Writers), "writers", "goroutines that write to WebSockets (auto: one per CPU; off: a goroutine per connection while it writes)")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping interval (a pong must come within 15 s)")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", 15*time.Second, "a WebSocket that has read everything before a ping and does not answer it this long is closed")
	fs.DurationVar(&c.SSEKeepalive, "sse-keepalive", 15*time.Second, "longest silence on an SSE stream before a keepalive comment")
	fs.Var((*list)(&c.AllowedOrigins), "allowed-origins", "comma-separated origin patterns allowed for WebSocket and CORS (default: same origin only)")
	c.Security.flags(fs)
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "longest a graceful shutdown may take")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "json, console, or auto (console on a terminal, else json)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of the node's own files (the development JWT secret; the embedded user store)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret (32 bytes or more) of the tokens the user-owning application issues; prefer the variable to the flag (empty: see -jwt-public-key, -jwt-jwks-url, else a development secret in the data directory)")
	fs.StringVar(&c.JWTPublicKey, "jwt-public-key", "", "PEM file of the public key that verifies tokens: RSA (RS256) or P-256 (ES256)")
	fs.StringVar(&c.JWTJWKSURL, "jwt-jwks-url", "", "URL of the issuer's JSON Web Key Set (RS256 and ES256 keys; fetched again on an unknown kid)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "required iss of tokens (empty: not checked)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required aud of tokens (empty: not checked)")
	fs.BoolVar(&c.AuthRequired, "auth-required", false, "quote reads, /v1/ws and /v1/sse need a token too (false: public quotes are anonymous; /v1/me always needs one)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis for cache, active set, bus and leases, e.g. redis://127.0.0.1:6379/0 (empty: embedded memory, one node)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "qh:", "prefix of every Redis key and channel (one cluster per prefix)")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "QUOTEHUB_REDIS_URL names a Redis Cluster (redis://host:port?addr=host2:port2...)")
	fs.BoolVar(&c.RedisShardedPubSub, "redis-sharded-pubsub", false, "use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+), for Redis Cluster")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 600*time.Millisecond, "refresh lease time to live (renewed every third of it); a dead node's symbols are taken over within one TTL of its last renewal")
	fs.IntVar(&c.RefreshSlots, "refresh-slots", 64, "slots symbols hash onto for refresh ownership; the same on every node")
	fs.IntVar(&c.BusShards, "bus-shards", 16, "pub/sub shards (one subscriber connection each); the same on every node")
	fs.StringVar(&c.MySQLDSN, "mysql-dsn", "", "MySQL/MariaDB for users' watchlists, portfolios and alerts, e.g. quotehub:pw@tcp(db:3306)/quotehub (empty: embedded SQLite under the data directory)")
	fs.IntVar(&c.MySQLMaxOpen, "mysql-max-open", 20, "MySQL connections per node at most")
	fs.IntVar(&c.MySQLMaxIdle, "mysql-max-idle", 20, "idle MySQL connections a node keeps")
	fs.DurationVar(&c.MySQLConnLifetime, "mysql-conn-lifetime", 3*time.Minute, "a MySQL connection is replaced after this long")
	fs.IntVar(&c.PortfolioCache, "portfolio-cache", usercache.DefaultSize, "portfolios a node keeps in memory for valued reads and follows, least recently read dropped first (0: off)")
	fs.DurationVar(&c.StoreTimeout, "store-timeout", 3*time.Second, "longest one call to the user-data store may take (all its queries)")
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
	return loadConfig(args, lookupEnv, out, nil)
}

// loadConfig is LoadConfig; extra, if not nil, adds flags of a subcommand
// (they have no environment variables).
func loadConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer, extra func(*flag.FlagSet)) (Config, error) {
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
	if extra != nil {
		extra(fs)
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
	want := wants[fmt.Sprintf("%T", v.Get())]
	switch v.Get().(type) {
	case int, int64: // decimal, as always: the flag package reads 010 as 8
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want %s (%w)", want, err)
		}
		s = strconv.FormatInt(n, 10)
	}
	if err := v.Getter.Set(s); err != nil {
		return fmt.Errorf("want %s (%w)", want, err)
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

// countSet counts the non-empty values.
func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

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

// validate reports every setting that is out of range or does not fit
// with another, each error naming the variable.
func (c *Config) validate() error {
	nodeIDChar := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)
	}
	absolute := func(u string) bool {
		pu, err := url.Parse(u)
		return err == nil && pu.Scheme != "" && pu.Host != ""
	}
	checks := []struct {
		ok  bool
		msg string
	}{
		{c.Freshness > 0, "QUOTEHUB_FRESHNESS must be positive"},
		{c.ActiveWindow > 0, "QUOTEHUB_ACTIVE_WINDOW must be positive"},
		{c.Heartbeat > 0, "QUOTEHUB_HEARTBEAT must be positive"},
		{c.RefreshInterval > 0, "QUOTEHUB_REFRESH_INTERVAL must be positive"},
		{c.FetchTimeout > 0, "QUOTEHUB_FETCH_TIMEOUT must be positive"},
		{c.UpstreamTimeout > 0, "QUOTEHUB_UPSTREAM_TIMEOUT must be positive"},
		{c.SlowConsumer > 0, "QUOTEHUB_SLOW_CONSUMER_TIMEOUT must be positive"},
		{c.PingInterval > 0, "QUOTEHUB_PING_INTERVAL must be positive"},
		{c.PongTimeout > 0, "QUOTEHUB_PONG_TIMEOUT must be positive"},
		{c.SSEKeepalive > 0, "QUOTEHUB_SSE_KEEPALIVE must be positive"},
		{c.ShutdownTimeout > 0, "QUOTEHUB_SHUTDOWN_TIMEOUT must be positive"},
		{c.MaxSymbols >= 1, "QUOTEHUB_MAX_SYMBOLS must be at least 1"},
		{c.MaxCandles >= 0, "QUOTEHUB_MAX_CANDLE_STREAMS must not be negative (0: twice QUOTEHUB_MAX_SYMBOLS)"},
		{c.MaxMessageBytes >= 256, "QUOTEHUB_MAX_MESSAGE_BYTES must be at least 256"},
		{c.MaxConnections >= 1, "QUOTEHUB_MAX_CONNECTIONS must be at least 1"},
		{c.UnreadAge >= 0, "QUOTEHUB_UNREAD_AGE must not be negative (0: off)"},
		{c.SSEUnreadAge >= 0, "QUOTEHUB_SSE_UNREAD_AGE must not be negative (0: off)"},
		{c.OpsPerSecond > 0, "QUOTEHUB_OPS_PER_SECOND must be positive"},
		{c.SimBatch >= 1, "QUOTEHUB_SIM_BATCH must be at least 1"},
		{c.SimFailRate >= 0 && c.SimFailRate <= 1, "QUOTEHUB_SIM_FAIL_RATE must be within [0, 1]"},
		{c.LeaseTTL > 0, "QUOTEHUB_LEASE_TTL must be positive"},
		{c.LeaseTTL <= 0 || c.LeaseTTL >= 300*time.Millisecond, "QUOTEHUB_LEASE_TTL must be at least 300ms"},
		{c.MySQLMaxOpen >= 1, "QUOTEHUB_MYSQL_MAX_OPEN must be at least 1"},
		{c.MySQLMaxIdle <= c.MySQLMaxOpen, "QUOTEHUB_MYSQL_MAX_IDLE must not exceed QUOTEHUB_MYSQL_MAX_OPEN"},
		{c.MySQLConnLifetime > 0, "QUOTEHUB_MYSQL_CONN_LIFETIME must be positive"},
		{c.StoreTimeout > 0, "QUOTEHUB_STORE_TIMEOUT must be positive"},
		{c.PortfolioCache >= 0, "QUOTEHUB_PORTFOLIO_CACHE must not be negative (0: off)"},
		{c.RefreshSlots >= 1 && c.RefreshSlots <= 16384, "QUOTEHUB_REFRESH_SLOTS must be within 1..16384"},
		{c.BusShards >= 1 && c.BusShards <= 1024, "QUOTEHUB_BUS_SHARDS must be within 1..1024"},
		{c.RedisURL != "" || !(c.RedisCluster || c.RedisShardedPubSub), "QUOTEHUB_REDIS_CLUSTER and QUOTEHUB_REDIS_SHARDED_PUBSUB need QUOTEHUB_REDIS_URL"},
		{c.RedisURL == "" || c.RedisPrefix != "", "QUOTEHUB_REDIS_PREFIX must not be empty"},
		{strings.IndexFunc(c.NodeID, func(r rune) bool { return !nodeIDChar(r) }) < 0, fmt.Sprintf("QUOTEHUB_NODE_ID %q: use letters, digits and - _ . :", c.NodeID)},
		{len(c.NodeID) <= 64, "QUOTEHUB_NODE_ID is longer than 64 characters"},
		{c.Heartbeat < c.ActiveWindow, "QUOTEHUB_HEARTBEAT must be shorter than QUOTEHUB_ACTIVE_WINDOW, or watched symbols would drop out"},
		{len(c.Providers) > 0, "QUOTEHUB_PROVIDERS names no provider"},
		{c.UpbitMode == "push" || c.UpbitMode == "poll", fmt.Sprintf("QUOTEHUB_UPBIT_MODE: %q is not push or poll", c.UpbitMode)},
		{c.UpbitRate > 0, "QUOTEHUB_UPBIT_RATE must be positive"},
		{c.YahooRate > 0, "QUOTEHUB_YAHOO_RATE must be positive"},
		{c.UpbitBatch >= 1, "QUOTEHUB_UPBIT_BATCH must be at least 1"},
		{c.YahooBatch >= 1, "QUOTEHUB_YAHOO_BATCH must be at least 1"},
		{c.YahooParallel >= 1, "QUOTEHUB_YAHOO_CONCURRENCY must be at least 1"},
		{c.UpbitTimeout > 0, "QUOTEHUB_UPBIT_TIMEOUT must be positive"},
		{c.YahooTimeout > 0, "QUOTEHUB_YAHOO_TIMEOUT must be positive"},
		{absolute(c.UpbitURL), fmt.Sprintf("QUOTEHUB_UPBIT_URL: %q is not an absolute URL", c.UpbitURL)},
		{absolute(c.UpbitWSURL), fmt.Sprintf("QUOTEHUB_UPBIT_WS_URL: %q is not an absolute URL", c.UpbitWSURL)},
		{absolute(c.YahooURL), fmt.Sprintf("QUOTEHUB_YAHOO_URL: %q is not an absolute URL", c.YahooURL)},
		{slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel), fmt.Sprintf("QUOTEHUB_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel)},
		{c.DataDir != "", "QUOTEHUB_DATA_DIR must not be empty"},
		{countSet(c.JWTSecret, c.JWTPublicKey, c.JWTJWKSURL) <= 1, "QUOTEHUB_JWT_SECRET, QUOTEHUB_JWT_PUBLIC_KEY and QUOTEHUB_JWT_JWKS_URL: set one at most"},
		{c.JWTSecret == "" || len(c.JWTSecret) >= auth.MinSecretBytes, fmt.Sprintf("QUOTEHUB_JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)},
		{c.JWTJWKSURL == "" || absolute(c.JWTJWKSURL), fmt.Sprintf("QUOTEHUB_JWT_JWKS_URL: %q is not an absolute URL", c.JWTJWKSURL)},
		{slices.Contains([]string{"auto", "json", "console"}, c.LogFormat), fmt.Sprintf("QUOTEHUB_LOG_FORMAT: %q is not auto, json or console", c.LogFormat)},
	}
	errs := c.Security.validate(c.AdminAddr)
	for _, ch := range checks {
		if !ch.ok {
			errs = append(errs, errors.New(ch.msg))
		}
	}
	for i, p := range c.Providers {
		switch {
		case p != "sim" && p != "upbit" && p != "yahoo":
			errs = append(errs, fmt.Errorf("QUOTEHUB_PROVIDERS: unknown provider %q (available: sim, upbit, yahoo)", p))
		case slices.Contains(c.Providers[:i], p):
			errs = append(errs, fmt.Errorf("QUOTEHUB_PROVIDERS names %q twice", p))
		}
	}
	return errors.Join(errs...)
}
