package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/rs/zerolog"

	"quotehub/web"
)

// Security is the settings that face the open internet: limits per client
// address, the proxies whose X-Forwarded-For is believed, the Host names
// served, TLS, and where the admin and metrics endpoints listen.
type Security struct {
	IPConnections   int
	IPPending       int
	IPStreams       int
	IPReads         float64
	ControlFrames   float64
	Exempt          []string
	TrustedProxies  []string
	PublicHosts     []string
	TLSCert, TLSKey string
	AdminPublic     bool
	MetricsPublic   bool
}

func (s *Security) flags(fs *flag.FlagSet) {
	fs.IntVar(&s.IPConnections, "ip-max-connections", 500, "TCP connections one client address may hold open (0: no limit); more are answered 429 and closed")
	fs.IntVar(&s.IPPending, "ip-max-pending", 64, "connections of one client address opening or inside a request, handshakes included (0: no limit); more are answered 429 and closed")
	fs.IntVar(&s.IPStreams, "ip-max-streams", 500, "WebSockets and SSE streams one client address may hold (0: no limit); more: WebSocket closed with 1013, SSE answered 429")
	fs.Float64Var(&s.IPReads, "ip-reads-per-second", 100, "HTTP reads (/v1/quotes, /v1/symbols) per second from one client address, bursts of twice that (0: no limit); more get 429")
	fs.Float64Var(&s.ControlFrames, "control-frames-per-second", 10, "pings and pongs per second one WebSocket may send, bursts of twice that (0: no limit); more close it with 1008")
	s.Exempt = []string{"127.0.0.0/8", "::1/128"} // the default: fs.Var reads it
	fs.Var((*list)(&s.Exempt), "limit-exempt", "client addresses or CIDRs the per-address limits do not apply to (empty: none)")
	fs.Var((*list)(&s.TrustedProxies), "trusted-proxies", "addresses or CIDRs of proxies whose X-Forwarded-For names the client (default: none, the peer is the client)")
	fs.Var((*list)(&s.PublicHosts), "public-hosts", "Host names served, as patterns (e.g. quotes.example.com,*.example.com; * for any); IP addresses, localhost and the listen address's name are always served")
	fs.StringVar(&s.TLSCert, "tls-cert", "", "PEM certificate chain: serve HTTPS (HTTP/1.1) on QUOTEHUB_ADDR; reloaded on SIGHUP")
	fs.StringVar(&s.TLSKey, "tls-key", "", "PEM private key of QUOTEHUB_TLS_CERT")
	fs.BoolVar(&s.AdminPublic, "admin-public", false, "allow QUOTEHUB_ADMIN_ADDR on a non-loopback address (pprof and metrics reachable from the network)")
	fs.BoolVar(&s.MetricsPublic, "metrics-public", true, "serve /metrics on the public port too (false: only on QUOTEHUB_ADMIN_ADDR)")
}

func (s *Security) validate(adminAddr string) []error {
	var errs []error
	for _, v := range []struct {
		ok  bool
		msg string
	}{
		{s.IPConnections >= 0, "QUOTEHUB_IP_MAX_CONNECTIONS must not be negative"},
		{s.IPPending >= 0, "QUOTEHUB_IP_MAX_PENDING must not be negative"},
		{s.IPStreams >= 0, "QUOTEHUB_IP_MAX_STREAMS must not be negative"},
		{s.IPReads >= 0, "QUOTEHUB_IP_READS_PER_SECOND must not be negative"},
		{s.ControlFrames >= 0, "QUOTEHUB_CONTROL_FRAMES_PER_SECOND must not be negative"},
		{(s.TLSCert == "") == (s.TLSKey == ""), "QUOTEHUB_TLS_CERT and QUOTEHUB_TLS_KEY go together"},
	} {
		if !v.ok {
			errs = append(errs, errors.New(v.msg))
		}
	}
	if _, err := prefixes(s.Exempt); err != nil {
		errs = append(errs, fmt.Errorf("QUOTEHUB_LIMIT_EXEMPT: %w", err))
	}
	if _, err := prefixes(s.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("QUOTEHUB_TRUSTED_PROXIES: %w", err))
	}
	if adminAddr != "" && !s.AdminPublic && !loopback(adminAddr) {
		errs = append(errs, fmt.Errorf("QUOTEHUB_ADMIN_ADDR %q is not a loopback address: pprof would be reachable from the network (set QUOTEHUB_ADMIN_PUBLIC=true if that is meant)", adminAddr))
	}
	if !s.MetricsPublic && adminAddr == "" {
		errs = append(errs, errors.New("QUOTEHUB_METRICS_PUBLIC=false needs QUOTEHUB_ADMIN_ADDR, where /metrics is served instead"))
	}
	return errs
}

// prefixes parses addresses and CIDRs.
func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR", v)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// loopback reports whether a listen address binds loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// limits builds the web server's limits; listen is the public address, whose
// host name (if it has one) is served too.
func (s *Security) limits(listen string) web.Limits {
	exempt, _ := prefixes(s.Exempt) // validated
	trusted, _ := prefixes(s.TrustedProxies)
	hosts := append([]string{}, s.PublicHosts...)
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if _, err := netip.ParseAddr(h); err != nil {
			hosts = append(hosts, strings.ToLower(h))
		}
	}
	return web.Limits{
		Conns: s.IPConnections, Pending: s.IPPending, Streams: s.IPStreams, Reads: s.IPReads,
		ControlFrames: s.ControlFrames, Exempt: exempt, TrustedProxies: trusted, Hosts: hosts,
	}
}

// certificate holds the TLS certificate and loads it again on demand
// (SIGHUP): handshakes after a reload use the new one; a reload that
// fails keeps the old.
type certificate struct {
	certFile, keyFile string
	mu                sync.RWMutex
	cert              *tls.Certificate
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	return c, c.reload()
}

func (c *certificate) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s / key %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

// config is the server's TLS configuration: HTTP/1.1 only, since a
// WebSocket cannot be opened over HTTP/2 without extended CONNECT.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c.mu.RLock()
			defer c.mu.RUnlock()
			return c.cert, nil
		},
	}
}

// reloadOnHUP loads the certificate again on every SIGHUP until the
// returned stop is called.
func reloadOnHUP(c *certificate, log *zerolog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := c.reload(); err != nil {
					log.Error().Err(err).Msg("TLS reload failed; serving the previous certificate")
				} else {
					log.Info().Str("cert", c.certFile).Msg("TLS certificate reloaded")
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
