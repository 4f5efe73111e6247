package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// mapEnv is a LookupEnv backed by a map; the real environment is never read.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// load runs LoadConfig and fails the test on an error.
func mustLoadConfig(t *testing.T, args []string, vars map[string]string) Config {
	t.Helper()
	var out bytes.Buffer
	c, err := LoadConfig(args, mapEnv(vars), &out)
	if err != nil {
		t.Fatalf("LoadConfig(%q, %v) error: %v\noutput: %s", args, vars, err, out.String())
	}
	return c
}

// loadErr runs LoadConfig and returns its error, failing the test if there
// is none.
func loadConfigErr(t *testing.T, args []string, vars map[string]string) error {
	t.Helper()
	var out bytes.Buffer
	c, err := LoadConfig(args, mapEnv(vars), &out)
	if err == nil {
		t.Fatalf("LoadConfig(%q, %v) = %+v, want an error", args, vars, c)
	}
	return err
}

func TestLoadConfigDefaults(t *testing.T) {
	c := mustLoadConfig(t, nil, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, ":8080"},
		{"AdminAddr", c.AdminAddr, "127.0.0.1:6060"},
		{"NodeID", c.NodeID, ""},
		{"Freshness", c.Freshness, 5 * time.Second},
		{"ActiveWindow", c.ActiveWindow, 5 * time.Minute},
		{"Heartbeat", c.Heartbeat, 30 * time.Second},
		{"RefreshInterval", c.RefreshInterval, time.Second},
		{"FetchTimeout", c.FetchTimeout, 2 * time.Second},
		{"UpstreamTimeout", c.UpstreamTimeout, 5 * time.Second},
		{"MaxSymbols", c.MaxSymbols, 200},
		{"MaxMessageBytes", c.MaxMessageBytes, 4096},
		{"MaxConnections", c.MaxConnections, 100000},
		{"Writers", c.Writers, 0},
		{"OpsPerSecond", c.OpsPerSecond, 200.0},
		{"SlowConsumer", c.SlowConsumer, 30 * time.Second},
		{"PingInterval", c.PingInterval, 25 * time.Second},
		{"ShutdownTimeout", c.ShutdownTimeout, 10 * time.Second},
		{"LogLevel", c.LogLevel, "info"},
		{"LogFormat", c.LogFormat, "auto"},
		{"SimSeed", c.SimSeed, int64(1)},
		{"SimSymbols", c.SimSymbols, 0},
		{"SimLatency", c.SimLatency, time.Duration(0)},
		{"SimFailRate", c.SimFailRate, 0.0},
		{"SimDown", c.SimDown, false},
		{"SimEveryTick", c.SimEveryTick, false},
	}
	for _, ch := range checks {
		t.Run(ch.name+" has its default", func(t *testing.T) {
			if ch.got != ch.want {
				t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
			}
		})
	}
	t.Run("Providers defaults to sim", func(t *testing.T) {
		if !slices.Equal(c.Providers, []string{"sim"}) {
			t.Errorf("Providers = %q, want [sim]", c.Providers)
		}
	})
	t.Run("AllowedOrigins defaults to none", func(t *testing.T) {
		if len(c.AllowedOrigins) != 0 {
			t.Errorf("AllowedOrigins = %q, want none", c.AllowedOrigins)
		}
	})
}

func TestLoadConfigEnvironment(t *testing.T) {
	t.Run("environment overrides defaults", func(t *testing.T) {
		c := mustLoadConfig(t, nil, map[string]string{
			"QUOTEHUB_ADDR":             ":9090",
			"QUOTEHUB_NODE_ID":          "node-a",
			"QUOTEHUB_FRESHNESS":        "750ms",
			"QUOTEHUB_ACTIVE_WINDOW":    "10m",
			"QUOTEHUB_HEARTBEAT":        "1m",
			"QUOTEHUB_REFRESH_INTERVAL": "250ms",
			"QUOTEHUB_MAX_SYMBOLS":      "50",
			"QUOTEHUB_OPS_PER_SECOND":   "12.5",
			"QUOTEHUB_LOG_LEVEL":        "debug",
			"QUOTEHUB_LOG_FORMAT":       "json",
			"QUOTEHUB_SIM_SEED":         "-42",
			"QUOTEHUB_SIM_FAIL_RATE":    "0.25",
			"QUOTEHUB_SIM_DOWN":         "true",
			"QUOTEHUB_SIM_EVERY_TICK":   "1",
		})
		checks := []struct {
			name      string
			got, want any
		}{
			{"Addr", c.Addr, ":9090"},
			{"NodeID", c.NodeID, "node-a"},
			{"Freshness", c.Freshness, 750 * time.Millisecond},
			{"ActiveWindow", c.ActiveWindow, 10 * time.Minute},
			{"Heartbeat", c.Heartbeat, time.Minute},
			{"RefreshInterval", c.RefreshInterval, 250 * time.Millisecond},
			{"MaxSymbols", c.MaxSymbols, 50},
			{"OpsPerSecond", c.OpsPerSecond, 12.5},
			{"LogLevel", c.LogLevel, "debug"},
			{"LogFormat", c.LogFormat, "json"},
			{"SimSeed", c.SimSeed, int64(-42)},
			{"SimFailRate", c.SimFailRate, 0.25},
			{"SimDown", c.SimDown, true},
			{"SimEveryTick", c.SimEveryTick, true},
			{"AdminAddr (not set) keeps its default", c.AdminAddr, "127.0.0.1:6060"},
			{"MaxMessageBytes (not set) keeps its default", c.MaxMessageBytes, 4096},
		}
		for _, ch := range checks {
			if ch.got != ch.want {
				t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
			}
		}
	})

	t.Run("empty variable counts as unset", func(t *testing.T) {
		c := mustLoadConfig(t, nil, map[string]string{"QUOTEHUB_ADDR": "", "QUOTEHUB_FRESHNESS": ""})
		if c.Addr != ":8080" || c.Freshness != 5*time.Second {
			t.Errorf("Addr = %q Freshness = %v, want the defaults :8080 and 5s", c.Addr, c.Freshness)
		}
	})

	t.Run("empty clearable variable applies", func(t *testing.T) {
		c := mustLoadConfig(t, nil, map[string]string{"QUOTEHUB_ADMIN_ADDR": "", "QUOTEHUB_ALLOWED_ORIGINS": ""})
		if c.AdminAddr != "" || len(c.AllowedOrigins) != 0 {
			t.Errorf("AdminAddr = %q AllowedOrigins = %v, want both empty", c.AdminAddr, c.AllowedOrigins)
		}
	})

	t.Run("bare boolean flag sets it true", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"-sim-down", "-sim-every-tick"}, nil)
		if !c.SimDown || !c.SimEveryTick {
			t.Errorf("SimDown = %v SimEveryTick = %v, want true", c.SimDown, c.SimEveryTick)
		}
	})

	t.Run("comma lists are split and trimmed", func(t *testing.T) {
		c := mustLoadConfig(t, nil, map[string]string{
			"QUOTEHUB_PROVIDERS":       " sim , ",
			"QUOTEHUB_ALLOWED_ORIGINS": "https://a.example, https://*.b.example ,,\thttp://localhost:3000",
		})
		if !slices.Equal(c.Providers, []string{"sim"}) {
			t.Errorf("Providers = %q, want [sim]", c.Providers)
		}
		want := []string{"https://a.example", "https://*.b.example", "http://localhost:3000"}
		if !slices.Equal(c.AllowedOrigins, want) {
			t.Errorf("AllowedOrigins = %q, want %q", c.AllowedOrigins, want)
		}
	})
}

func TestLoadConfigFlags(t *testing.T) {
	t.Run("flag overrides environment", func(t *testing.T) {
		c := mustLoadConfig(t,
			[]string{"-addr", ":7070", "-freshness=3s", "-max-symbols", "10", "-log-level", "warn", "-sim-down=true"},
			map[string]string{
				"QUOTEHUB_ADDR":        ":9090",
				"QUOTEHUB_FRESHNESS":   "10s",
				"QUOTEHUB_MAX_SYMBOLS": "50",
				"QUOTEHUB_LOG_LEVEL":   "debug",
				"QUOTEHUB_SIM_DOWN":    "false",
			})
		if c.Addr != ":7070" || c.Freshness != 3*time.Second || c.MaxSymbols != 10 || c.LogLevel != "warn" || !c.SimDown {
			t.Errorf("got Addr=%q Freshness=%v MaxSymbols=%d LogLevel=%q SimDown=%v, want :7070 3s 10 warn true",
				c.Addr, c.Freshness, c.MaxSymbols, c.LogLevel, c.SimDown)
		}
	})

	t.Run("flag overrides default", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"--heartbeat", "10s", "-ops-per-second", "5"}, nil)
		if c.Heartbeat != 10*time.Second || c.OpsPerSecond != 5 {
			t.Errorf("Heartbeat = %v OpsPerSecond = %v, want 10s and 5", c.Heartbeat, c.OpsPerSecond)
		}
	})

	t.Run("environment not overridden by a flag is kept", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"-addr", ":7070"}, map[string]string{"QUOTEHUB_FRESHNESS": "9s"})
		if c.Addr != ":7070" || c.Freshness != 9*time.Second {
			t.Errorf("Addr = %q Freshness = %v, want :7070 and 9s", c.Addr, c.Freshness)
		}
	})

	t.Run("empty flag value disables the admin address", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"-admin-addr="}, nil)
		if c.AdminAddr != "" {
			t.Errorf("AdminAddr = %q, want empty", c.AdminAddr)
		}
	})

	t.Run("last of a repeated flag wins", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"-addr", ":1", "-addr", ":2"}, nil)
		if c.Addr != ":2" {
			t.Errorf("Addr = %q, want :2", c.Addr)
		}
	})

	t.Run("comma list flag is trimmed", func(t *testing.T) {
		c := mustLoadConfig(t, []string{"-allowed-origins", " https://a.example ,, https://b.example "}, nil)
		if want := []string{"https://a.example", "https://b.example"}; !slices.Equal(c.AllowedOrigins, want) {
			t.Errorf("AllowedOrigins = %q, want %q", c.AllowedOrigins, want)
		}
	})
}

func TestLoadConfigBadValues(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		// every string in want must appear in the error
		want []string
	}{
		{"bad duration names its variable", map[string]string{"QUOTEHUB_FRESHNESS": "5 seconds"}, []string{"QUOTEHUB_FRESHNESS", "5 seconds"}},
		{"NaN ops per second names its variable", map[string]string{"QUOTEHUB_OPS_PER_SECOND": "NaN"}, []string{"QUOTEHUB_OPS_PER_SECOND"}},
		{"infinite ops per second names its variable", map[string]string{"QUOTEHUB_OPS_PER_SECOND": "+Inf"}, []string{"QUOTEHUB_OPS_PER_SECOND"}},
		{"NaN fail rate names its variable", map[string]string{"QUOTEHUB_SIM_FAIL_RATE": "NaN"}, []string{"QUOTEHUB_SIM_FAIL_RATE"}},
		{"duration without unit names its variable", map[string]string{"QUOTEHUB_FETCH_TIMEOUT": "2"}, []string{"QUOTEHUB_FETCH_TIMEOUT"}},
		{"negative duration names its variable", map[string]string{"QUOTEHUB_ACTIVE_WINDOW": "-1m"}, []string{"QUOTEHUB_ACTIVE_WINDOW"}},
		{"zero freshness names its variable", map[string]string{"QUOTEHUB_FRESHNESS": "0s"}, []string{"QUOTEHUB_FRESHNESS"}},
		{"zero refresh interval names its variable", map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "0s"}, []string{"QUOTEHUB_REFRESH_INTERVAL"}},
		{"zero ping interval names its variable", map[string]string{"QUOTEHUB_PING_INTERVAL": "0"}, []string{"QUOTEHUB_PING_INTERVAL"}},
		{"negative int names its variable", map[string]string{"QUOTEHUB_MAX_SYMBOLS": "-1"}, []string{"QUOTEHUB_MAX_SYMBOLS"}},
		{"non-numeric int names its variable", map[string]string{"QUOTEHUB_MAX_CONNECTIONS": "many"}, []string{"QUOTEHUB_MAX_CONNECTIONS", "many"}},
		{"zero max symbols names its variable", map[string]string{"QUOTEHUB_MAX_SYMBOLS": "0"}, []string{"QUOTEHUB_MAX_SYMBOLS"}},
		{"tiny max message bytes names its variable", map[string]string{"QUOTEHUB_MAX_MESSAGE_BYTES": "100"}, []string{"QUOTEHUB_MAX_MESSAGE_BYTES"}},
		{"zero max connections names its variable", map[string]string{"QUOTEHUB_MAX_CONNECTIONS": "0"}, []string{"QUOTEHUB_MAX_CONNECTIONS"}},
		{"zero ops per second names its variable", map[string]string{"QUOTEHUB_OPS_PER_SECOND": "0"}, []string{"QUOTEHUB_OPS_PER_SECOND"}},
		{"non-numeric float names its variable", map[string]string{"QUOTEHUB_OPS_PER_SECOND": "fast"}, []string{"QUOTEHUB_OPS_PER_SECOND"}},
		{"fail rate 1.5 names its variable", map[string]string{"QUOTEHUB_SIM_FAIL_RATE": "1.5"}, []string{"QUOTEHUB_SIM_FAIL_RATE"}},
		{"negative fail rate names its variable", map[string]string{"QUOTEHUB_SIM_FAIL_RATE": "-0.1"}, []string{"QUOTEHUB_SIM_FAIL_RATE"}},
		{"bad bool names its variable", map[string]string{"QUOTEHUB_SIM_DOWN": "maybe"}, []string{"QUOTEHUB_SIM_DOWN"}},
		{"bad seed names its variable", map[string]string{"QUOTEHUB_SIM_SEED": "x1"}, []string{"QUOTEHUB_SIM_SEED"}},
		{"zero writers names its variable", map[string]string{"QUOTEHUB_WRITERS": "0"}, []string{"QUOTEHUB_WRITERS", "auto, off or 1"}},
		{"negative writers names its variable", map[string]string{"QUOTEHUB_WRITERS": "-1"}, []string{"QUOTEHUB_WRITERS"}},
		{"too many writers names its variable", map[string]string{"QUOTEHUB_WRITERS": "1025"}, []string{"QUOTEHUB_WRITERS"}},
		{"non-numeric writers names its variable", map[string]string{"QUOTEHUB_WRITERS": "many"}, []string{"QUOTEHUB_WRITERS", "many"}},
		{"zero store timeout names its variable", map[string]string{"QUOTEHUB_STORE_TIMEOUT": "0s"}, []string{"QUOTEHUB_STORE_TIMEOUT"}},
		{"zero MySQL pool names its variable", map[string]string{"QUOTEHUB_MYSQL_MAX_OPEN": "0"}, []string{"QUOTEHUB_MYSQL_MAX_OPEN"}},
		{"more idle than open MySQL connections names both", map[string]string{"QUOTEHUB_MYSQL_MAX_OPEN": "5", "QUOTEHUB_MYSQL_MAX_IDLE": "6"}, []string{"QUOTEHUB_MYSQL_MAX_IDLE", "QUOTEHUB_MYSQL_MAX_OPEN"}},
		{"zero MySQL connection lifetime names its variable", map[string]string{"QUOTEHUB_MYSQL_CONN_LIFETIME": "0s"}, []string{"QUOTEHUB_MYSQL_CONN_LIFETIME"}},
		{"unknown provider names its variable and the provider", map[string]string{"QUOTEHUB_PROVIDERS": "sim,bloomberg"}, []string{"QUOTEHUB_PROVIDERS", "bloomberg"}},
		{"empty provider list names its variable", map[string]string{"QUOTEHUB_PROVIDERS": " , "}, []string{"QUOTEHUB_PROVIDERS"}},
		{"bad log level names its variable", map[string]string{"QUOTEHUB_LOG_LEVEL": "verbose"}, []string{"QUOTEHUB_LOG_LEVEL", "verbose"}},
		{"upper-case log level names its variable", map[string]string{"QUOTEHUB_LOG_LEVEL": "INFO"}, []string{"QUOTEHUB_LOG_LEVEL"}},
		{"bad log format names its variable", map[string]string{"QUOTEHUB_LOG_FORMAT": "xml"}, []string{"QUOTEHUB_LOG_FORMAT", "xml"}},
		{"heartbeat equal to the active window names the heartbeat", map[string]string{"QUOTEHUB_HEARTBEAT": "5m"}, []string{"QUOTEHUB_HEARTBEAT"}},
		{"heartbeat longer than the active window names the heartbeat", map[string]string{"QUOTEHUB_HEARTBEAT": "1m", "QUOTEHUB_ACTIVE_WINDOW": "30s"}, []string{"QUOTEHUB_HEARTBEAT"}},
		{"negative per-address limit names its variable", map[string]string{"QUOTEHUB_IP_MAX_STREAMS": "-1"}, []string{"QUOTEHUB_IP_MAX_STREAMS"}},
		{"negative read rate names its variable", map[string]string{"QUOTEHUB_IP_READS_PER_SECOND": "-5"}, []string{"QUOTEHUB_IP_READS_PER_SECOND"}},
		{"bad trusted proxy names its variable and value", map[string]string{"QUOTEHUB_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, []string{"QUOTEHUB_TRUSTED_PROXIES", "proxy.local"}},
		{"bad exempt CIDR names its variable", map[string]string{"QUOTEHUB_LIMIT_EXEMPT": "10.0.0.0/33"}, []string{"QUOTEHUB_LIMIT_EXEMPT", "10.0.0.0/33"}},
		{"certificate without key names both", map[string]string{"QUOTEHUB_TLS_CERT": "cert.pem"}, []string{"QUOTEHUB_TLS_CERT", "QUOTEHUB_TLS_KEY"}},
		{"admin on every interface is refused", map[string]string{"QUOTEHUB_ADMIN_ADDR": ":6060"}, []string{"QUOTEHUB_ADMIN_ADDR", "QUOTEHUB_ADMIN_PUBLIC"}},
		{"admin on a public address is refused", map[string]string{"QUOTEHUB_ADMIN_ADDR": "192.0.2.10:6060"}, []string{"QUOTEHUB_ADMIN_ADDR"}},
		{"metrics off the public port need the admin listener", map[string]string{"QUOTEHUB_METRICS_PUBLIC": "false", "QUOTEHUB_ADMIN_ADDR": ""}, []string{"QUOTEHUB_METRICS_PUBLIC"}},
		{
			"several bad values are all named",
			map[string]string{"QUOTEHUB_LOG_LEVEL": "loud", "QUOTEHUB_SIM_FAIL_RATE": "2", "QUOTEHUB_MAX_SYMBOLS": "0"},
			[]string{"QUOTEHUB_LOG_LEVEL", "QUOTEHUB_SIM_FAIL_RATE", "QUOTEHUB_MAX_SYMBOLS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfigErr(t, nil, tt.vars)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	flagTests := []struct {
		name string
		args []string
		want string
	}{
		{"bad duration flag names the flag", []string{"-freshness", "soon"}, "freshness"},
		{"negative int flag names the flag", []string{"-max-symbols", "-1"}, "max-symbols"},
		{"bad bool flag names the flag", []string{"-sim-down=maybe"}, "sim-down"},
		{"fail rate flag 1.5 names the variable", []string{"-sim-fail-rate", "1.5"}, "QUOTEHUB_SIM_FAIL_RATE"},
		{"unknown provider flag names the variable", []string{"-providers", "bloomberg"}, "bloomberg"},
		{"heartbeat flag as long as the window names the heartbeat", []string{"-heartbeat", "1m", "-active-window", "1m"}, "QUOTEHUB_HEARTBEAT"},
		{"zero refresh interval flag names the variable", []string{"-refresh-interval", "0s"}, "QUOTEHUB_REFRESH_INTERVAL"},
		{"unknown flag is named", []string{"-no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range flagTests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfigErr(t, tt.args, nil)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigIntegersAreDecimal(t *testing.T) {
	c := mustLoadConfig(t, []string{"-max-symbols", "010"}, map[string]string{"QUOTEHUB_SIM_SEED": "010"})
	if c.MaxSymbols != 10 || c.SimSeed != 10 {
		t.Errorf("MaxSymbols = %d SimSeed = %d, want 10 and 10", c.MaxSymbols, c.SimSeed)
	}
	for _, v := range []string{"0x10", "1_000"} {
		if err := loadConfigErr(t, nil, map[string]string{"QUOTEHUB_MAX_SYMBOLS": v}); !strings.Contains(err.Error(), "QUOTEHUB_MAX_SYMBOLS") {
			t.Errorf("QUOTEHUB_MAX_SYMBOLS=%s: error %q does not name the variable", v, err)
		}
	}
}

func TestLoadConfigWriters(t *testing.T) {
	for v, want := range map[string]int{"auto": 0, "off": -1, "1": 1, "8": 8, "1024": 1024} {
		if c := mustLoadConfig(t, []string{"-writers", v}, nil); c.Writers != want {
			t.Errorf("-writers %s: Writers = %d, want %d", v, c.Writers, want)
		}
	}
}

func TestLoadConfigUsage(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg+" returns ErrHelp and prints usage", func(t *testing.T) {
			var out bytes.Buffer
			_, err := LoadConfig([]string{arg}, mapEnv(nil), &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("error = %v, want flag.ErrHelp", err)
			}
			for _, want := range []string{"-addr", "QUOTEHUB_ADDR", "-sim-fail-rate", "QUOTEHUB_SIM_FAIL_RATE"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("usage does not mention %q:\n%s", want, out.String())
				}
			}
		})
	}

	t.Run("stray positional argument is an error", func(t *testing.T) {
		err := loadConfigErr(t, []string{"-addr", ":7070", "serve"}, nil)
		if errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "serve") {
			t.Errorf("error = %v, want one naming %q", err, "serve")
		}
	})

	t.Run("arguments after -- are still positional", func(t *testing.T) {
		err := loadConfigErr(t, []string{"--", "-addr"}, nil)
		if !strings.Contains(err.Error(), "-addr") {
			t.Errorf("error = %v, want one naming %q", err, "-addr")
		}
	})
}

// settings are the flags as the README's table lists them: name,
// environment variable and default.
var settings = func() (out []struct{ flag, env, def string }) {
	new(Config).flagSet(io.Discard).VisitAll(func(f *flag.Flag) {
		out = append(out, struct{ flag, env, def string }{f.Name, envName(f.Name), f.DefValue})
	})
	return out
}()

// The admin listener may leave loopback only when told to; the limits
// take their defaults, and loopback is exempt from them unless cleared.
func TestLoadConfigSecurity(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060", ""} {
		mustLoadConfig(t, nil, map[string]string{"QUOTEHUB_ADMIN_ADDR": addr})
	}
	c := mustLoadConfig(t, nil, map[string]string{"QUOTEHUB_ADMIN_ADDR": ":6060", "QUOTEHUB_ADMIN_PUBLIC": "true"})
	if !c.Security.AdminPublic {
		t.Error("QUOTEHUB_ADMIN_PUBLIC not read")
	}
	d := mustLoadConfig(t, nil, nil)
	l := d.Security.limits(":8080")
	if l.Conns != 500 || l.Pending != 64 || l.Streams != 500 || l.Reads != 100 || l.ControlFrames != 10 {
		t.Errorf("default limits %+v", l)
	}
	if len(l.Exempt) != 2 || len(l.TrustedProxies) != 0 || l.Hosts == nil || len(l.Hosts) != 0 {
		t.Errorf("default exempt %v, proxies %v, hosts %#v", l.Exempt, l.TrustedProxies, l.Hosts)
	}
	e := mustLoadConfig(t, nil, map[string]string{"QUOTEHUB_LIMIT_EXEMPT": "", "QUOTEHUB_TRUSTED_PROXIES": "10.0.0.1,fd00::/8",
		"QUOTEHUB_PUBLIC_HOSTS": "quotes.example.com", "QUOTEHUB_ADDR": "Edge.Example.net:8443"})
	l = e.Security.limits(e.Addr)
	if len(l.Exempt) != 0 || len(l.TrustedProxies) != 2 || !slices.Equal(l.Hosts, []string{"quotes.example.com", "edge.example.net"}) {
		t.Errorf("exempt %v, proxies %v, hosts %v", l.Exempt, l.TrustedProxies, l.Hosts)
	}
}
