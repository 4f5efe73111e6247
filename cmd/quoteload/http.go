package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// socketsChecked counts sockets that went through loopbackOnly (tests use
// it to prove that a refused target opened none).
var socketsChecked atomic.Int64

// loopbackOnly is every dialer's Control hook: it runs after the socket is
// created and before it connects, and refuses any resolved address that is
// not loopback (a name such as localhost that resolves elsewhere, or a
// redirect, never gets a connection).
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	socketsChecked.Add(1)
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to non-loopback address %s", address)
	}
	return nil
}

// newRunner builds the run's HTTP clients: one transport per source
// address (each serves every node), all dialling through loopbackOnly and
// never following redirects.
func newRunner(cfg Config, bases []*url.URL) *runner {
	r := &runner{cfg: cfg, bases: bases}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	transport := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
		t := &http.Transport{
			DialContext:           dial,
			MaxIdleConnsPerHost:   cfg.Conns + 1,
			IdleConnTimeout:       30 * time.Second,
			DisableCompression:    true,
			ResponseHeaderTimeout: cfg.ConnectTimeout,
			TLSHandshakeTimeout:   cfg.ConnectTimeout,
			TLSClientConfig:       tlsConfig(cfg),
		}
		r.trans = append(r.trans, t)
		return t
	}
	for i := range cfg.Sources {
		d := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: loopbackOnly}
		if cfg.RcvBuf > 0 {
			d.Control = rcvBufControl(int(cfg.RcvBuf), &r.rcvBufKernel)
		}
		if cfg.Sources > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		}
		r.dialers = append(r.dialers, d)
		r.clients = append(r.clients, &http.Client{Transport: transport(d.DialContext), CheckRedirect: noRedirect})
		if cfg.SlowShare > 0 {
			// The slow connections' own transport: every socket it dials
			// reads at -slow-rate (SSE streams, wss:// WebSockets).
			slowDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return r.paceConn(nc, cfg.SlowRate), nil
			}
			r.slowClients = append(r.slowClients, &http.Client{Transport: transport(slowDial), CheckRedirect: noRedirect})
		}
	}
	d := &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}
	r.metrics = &http.Client{
		Transport: &http.Transport{
			DialContext:        d.DialContext,
			DisableKeepAlives:  true,
			DisableCompression: true,
			TLSClientConfig:    tlsConfig(cfg),
		},
		CheckRedirect: noRedirect,
		Timeout:       5 * time.Second,
	}
	if cfg.Window > 0 {
		r.windows = newAgeWindows(cfg.Window, cfg.Duration)
	}
	return r
}

// tlsConfig is the TLS configuration of https:// targets: nil (Go's
// defaults) unless cfg names CAs to trust.
func tlsConfig(cfg Config) *tls.Config {
	if cfg.RootCAs == nil {
		return nil
	}
	return &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

// client returns connection i's HTTP client (source address 1 + i mod N).
func (r *runner) client(i int) *http.Client { return r.clients[i%len(r.clients)] }

// connClient returns connection c's HTTP client: client(c.id), or its
// paced twin when c is one of the slow connections.
func (r *runner) connClient(c *conn) *http.Client {
	if c.st.slow {
		return r.slowClients[c.id%len(r.slowClients)]
	}
	return r.client(c.id)
}

// dialer returns connection i's TCP dialer (source address 1 + i mod N,
// the one its HTTP client uses).
func (r *runner) dialer(i int) *net.Dialer { return r.dialers[i%len(r.dialers)] }

// base returns connection i's node: the base URL i mod len(urls).
func (r *runner) base(i int) *url.URL { return r.bases[i%len(r.bases)] }

// nodeLabel is the prefix of a warning about node j: "" when there is only
// one node (the single-node messages read as before), else "node <url>: ".
func (r *runner) nodeLabel(j int) string {
	if len(r.bases) == 1 {
		return ""
	}
	return "node " + r.bases[j].String() + ": "
}

// closeIdle closes the idle connections of every transport.
func (r *runner) closeIdle() {
	for _, t := range r.trans {
		t.CloseIdleConnections()
	}
	r.metrics.CloseIdleConnections()
}

// runHTTP runs one read worker: GET /v1/quotes/{symbol} in a loop over the
// worker's symbols, paced to its share of -rate, until the run stops.
// Starting the worker is its "connection"; connect latency is not measured.
func (r *runner) runHTTP(_ context.Context, c *conn, connected func(bool)) {
	st := &c.st
	st.connected = true
	connected(true)
	urls := make([]string, len(c.syms))
	paths := make([]string, len(c.syms))
	tmpl := r.cfg.ReadPath
	if tmpl == "" {
		tmpl = "/v1/quotes/{symbol}"
	}
	tpath, tquery, _ := strings.Cut(tmpl, "?")
	for j, s := range c.syms {
		u := *r.base(c.id)
		u.Path += strings.ReplaceAll(tpath, "{symbol}", s)
		u.RawPath = ""
		u.RawQuery = tquery
		urls[j], paths[j] = u.String(), u.RequestURI()
	}
	get := r.netHTTPGet(c.id, urls)
	if r.base(c.id).Scheme == "http" {
		hc := newHTTPConn(r.stopCtx, r.dialer(c.id), r.base(c.id), paths, r.cfg.ConnectTimeout, r.cfg.Headers...)
		defer hc.close()
		get = hc.get
	}
	var interval time.Duration
	next := time.Now()
	if r.cfg.Rate > 0 {
		interval = time.Duration(float64(r.cfg.Conns) / r.cfg.Rate * float64(time.Second))
		next = next.Add(interval * time.Duration(c.id) / time.Duration(r.cfg.Conns)) // spread the workers
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var qs []quoteRec
	for n := 0; ; n++ {
		if r.stopping.Load() || r.stopCtx.Err() != nil {
			return
		}
		if interval > 0 {
			if wait := time.Until(next); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-r.stopCtx.Done():
					return
				}
			}
			next = next.Add(interval)
			if late := time.Since(next); late > time.Second {
				next = next.Add(late) // do not burst to catch up after a stall
			}
		}
		t0 := time.Now()
		status, body, err := get(n % len(urls))
		done := time.Now()
		if err != nil {
			if r.stopping.Load() || r.stopCtx.Err() != nil {
				return
			}
			switch {
			case isTimeout(err):
				st.addErr("request_timeout")
			case errors.Is(err, errHTTPResponse):
				st.addErr("http_bad_response")
			default:
				st.addErr("request")
			}
			// Do not spin on a refused connection.
			timer.Reset(10 * time.Millisecond)
			select {
			case <-timer.C:
			case <-r.stopCtx.Done():
				return
			}
			continue
		}
		measuring := r.phase.Load() == phaseMeasure
		if measuring {
			st.frames++ // requests
			st.bytes += uint64(len(body))
			st.lat.Record(done.Sub(t0).Microseconds())
			st.addStatus(status)
		}
		if status != http.StatusOK {
			st.addErr(fmt.Sprintf("http_%d", status))
			continue
		}
		if r.cfg.ReadPath != "" {
			continue // another resource than a quote: status and latency only
		}
		qs = scanQuotes(qs[:0], body)
		if len(qs) != 1 {
			st.addErr("http_bad_quote")
			continue
		}
		st.checkSeq(&qs[0])
		if measuring {
			st.deliveries++
		}
	}
}

// netHTTPGet returns a getter of urls through connection i's net/http
// client (https:// targets).
func (r *runner) netHTTPGet(i int, urls []string) func(j int) (int, []byte, error) {
	var buf bytes.Buffer
	return func(j int) (int, []byte, error) {
		req, err := http.NewRequestWithContext(r.stopCtx, http.MethodGet, urls[j], nil)
		if err != nil {
			return 0, nil, err
		}
		r.cfg.Headers.setOn(req)
		resp, err := r.client(i).Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		buf.Reset()
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return 0, nil, err
		}
		return resp.StatusCode, buf.Bytes(), nil
	}
}

// serverSample is what one read of the server's /metrics gave.
type serverSample struct {
	At            time.Time
	RSS           float64 // process_resident_memory_bytes
	CPU           float64 // process_cpu_seconds_total
	Goroutines    float64 // go_goroutines
	Delivered     float64 // quotehub_quotes_delivered_total, all transports
	Subscriptions float64 // quotehub_subscriptions
	Conns         map[string]float64
	has           map[string]bool
}

// scrapeAll reads every node's /metrics at once and returns one sample per
// node (nil where the read failed, reported through warn with the node's
// label). With prev non-nil, only the nodes whose prev sample is non-nil are
// read: a node without a baseline gets no later figures either.
func (r *runner) scrapeAll(ctx context.Context, prev []*serverSample, warn func(node string, err error)) []*serverSample {
	out := make([]*serverSample, len(r.bases))
	errs := make([]error, len(r.bases))
	var wg sync.WaitGroup
	for j := range r.bases {
		if prev != nil && prev[j] == nil {
			continue
		}
		wg.Go(func() { out[j], errs[j] = r.scrape(ctx, j) })
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			warn(r.nodeLabel(j), err)
		}
	}
	return out
}

// scrape reads node j's /metrics.
func (r *runner) scrape(ctx context.Context, j int) (*serverSample, error) {
	u := *r.bases[j]
	u.Path += "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.metrics.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u.String(), resp.Status)
	}
	s, err := parseMetrics(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	s.At = time.Now()
	return s, nil
}

// parseMetrics reads the few series quoteload reports from Prometheus text.
func parseMetrics(rd io.Reader) (*serverSample, error) {
	s := &serverSample{Conns: map[string]float64{}, has: map[string]bool{}}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, "", ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
			if rest[0] == '{' {
				j := strings.LastIndexByte(rest, '}')
				if j < 0 {
					continue
				}
				labels, rest = rest[1:j], rest[j+1:]
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			s.RSS = v
		case "process_cpu_seconds_total":
			s.CPU = v
		case "go_goroutines":
			s.Goroutines = v
		case "quotehub_quotes_delivered_total":
			s.Delivered += v
		case "quotehub_connections":
			s.Conns[labelValue(labels, "transport")] += v
		case "quotehub_subscriptions":
			s.Subscriptions += v
		default:
			continue
		}
		s.has[name] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !s.has["process_resident_memory_bytes"] && !s.has["quotehub_connections"] && !s.has["go_goroutines"] {
		return nil, errors.New("no quotehub or process metrics in /metrics")
	}
	return s, nil
}

// labelValue returns the value of label name in a Prometheus label list
// (name="value",...); "" when absent.
func labelValue(labels, name string) string {
	for labels != "" {
		eq := strings.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return ""
		}
		key := strings.TrimSpace(strings.TrimPrefix(labels[:eq], ","))
		rest := labels[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(rest[i])
				}
				continue
			}
			val.WriteByte(rest[i])
		}
		if key == name {
			return val.String()
		}
		if i+1 >= len(rest) {
			return ""
		}
		labels = rest[i+1:]
	}
	return ""
}
