package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"quotehub"
	"quotehub/hub"
)

// Limits bound what one client address may hold or do. A zero field is
// no limit. The address is the peer's, or, for a peer in TrustedProxies,
// the nearest untrusted address of X-Forwarded-For.
type Limits struct {
	// Conns is the most TCP connections one peer address may hold open
	// (streams, idle keep-alives, requests and handshakes alike). Checked
	// when a connection is accepted, before anything is read: the peer is
	// answered 429 and closed. Trusted proxies are not counted.
	Conns int
	// Pending is the most connections of one peer address that are
	// opening or inside a request (WebSocket and SSE handshakes in
	// progress, reads being answered): a peer that opens many connections
	// and sends half a request on each is refused like Conns.
	Pending int
	// Streams is the most WebSockets and SSE streams one client address
	// may hold: a WebSocket over it is closed with 1013, an SSE request
	// answered 429.
	Streams int
	// Reads is the rate of HTTP reads (/v1/quotes, /v1/symbols) one client
	// address may make, per second; bursts of twice that pass. Over it:
	// 429 rate_limited with Retry-After.
	Reads float64
	// ControlFrames is the rate of control frames (pings, pongs) one
	// WebSocket may send, per second, with bursts of twice that; over it
	// the connection is closed with 1008.
	ControlFrames float64
	// Exempt addresses are not limited (none of the above applies to
	// them).
	Exempt []netip.Prefix
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Hosts are the Host names (path.Match patterns; "*" accepts any)
	// the node answers; a request for another is refused 403 before
	// anything else, and the same-origin check trusts only these. IP
	// literals are always accepted: a DNS-rebinding page is always
	// reached through a name. Nil: no check.
	Hosts []string
}

// Refusal reasons, the values of quotehub_refused_total's label.
const (
	refuseConns    = "ip_connections"
	refusePending  = "ip_pending"
	refuseStreams  = "ip_streams"
	refuseReads    = "ip_reads"
	refuseControls = "control_frames"
	refuseHost     = "host"
)

// guard enforces Limits and counts and logs its refusals.
type guard struct {
	l       Limits
	refused *prometheus.CounterVec
	log     zerolog.Logger // sampled

	mu      sync.Mutex
	conns   map[netip.Addr]int // peer → open connections
	pending map[netip.Addr]int // peer → connections opening or in a request
	streams map[netip.Addr]int // client → streams
	state   map[net.Conn]bool  // counted connection → pending now
	readers map[netip.Addr]*reader
	swept   time.Time
}

type reader struct {
	lim  *rate.Limiter
	seen time.Time
}

func newGuard(l Limits, reg prometheus.Registerer, log zerolog.Logger) *guard {
	g := &guard{
		l: l,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_refused_total",
			Help: "Requests and connections refused by a per-address limit, the Host check or the control-frame limit, by reason.",
		}, []string{"reason"}),
		log:     log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		conns:   map[netip.Addr]int{},
		pending: map[netip.Addr]int{},
		streams: map[netip.Addr]int{},
		state:   map[net.Conn]bool{},
		readers: map[netip.Addr]*reader{},
	}
	for _, r := range []string{refuseConns, refusePending, refuseStreams, refuseReads, refuseControls, refuseHost} {
		g.refused.WithLabelValues(r)
	}
	reg.MustRegister(g.refused)
	return g
}

// refuse counts a refusal and logs it (sampled).
func (g *guard) refuse(reason string, addr netip.Addr, detail string) {
	g.refused.WithLabelValues(reason).Inc()
	g.log.Warn().Str("reason", reason).Str("remote", addr.String()).Msg("refused: " + detail)
}

func in(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrOf returns the IP of a net.Addr (unmapped from IPv4-in-IPv6).
func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// clientAddr is the request's client: the peer, or for a trusted proxy the
// rightmost address of X-Forwarded-For that is not a trusted proxy itself.
func (g *guard) clientAddr(r *http.Request) netip.Addr {
	peer := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr().Unmap()
	}
	if !peer.IsValid() || !in(g.l.TrustedProxies, peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed hop: trust nothing beyond the proxy
		}
		a = a.Unmap()
		if !in(g.l.TrustedProxies, a) {
			return a
		}
		peer = a
	}
	return peer
}

// ipExtractor gives echo's RealIP the same client address.
func (g *guard) ipExtractor(r *http.Request) string { return g.clientAddr(r).String() }

// limitListener counts the connections of each peer and refuses those
// over Conns or Pending.
type limitListener struct {
	net.Listener
	g *guard
}

// countedConn is an accepted connection that gives its count back once.
type countedConn struct {
	net.Conn
	g    *guard
	addr netip.Addr
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.g.closed(c) })
	return c.Conn.Close()
}

// Accept returns the next connection within the limits; refused ones are
// answered and closed here.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := addrOf(c.RemoteAddr())
		g := l.g
		if !a.IsValid() || in(g.l.Exempt, a) || in(g.l.TrustedProxies, a) {
			return c, nil
		}
		g.mu.Lock()
		reason := ""
		switch {
		case g.l.Conns > 0 && g.conns[a] >= g.l.Conns:
			reason = refuseConns
		case g.l.Pending > 0 && g.pending[a] >= g.l.Pending:
			reason = refusePending
		default:
			g.conns[a]++
			g.pending[a]++
		}
		cc := &countedConn{Conn: c, g: g, addr: a}
		if reason == "" {
			g.state[cc] = true
		}
		g.mu.Unlock()
		if reason == "" {
			return cc, nil
		}
		g.refuse(reason, a, "too many connections from one address")
		go refuseConn(c)
	}
}

// tooMany is the answer to a connection over a per-address limit.
var tooMany = func() []byte {
	body := `{"error":{"code":"rate_limited","message":"too many connections from your address; retry later"}}` + "\n"
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// refuseConn answers a refused connection without reading it, bounded in
// time, and closes it.
func refuseConn(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(tooMany)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.Close()
}

// connState follows a counted connection in and out of pending: new or
// in a request is pending; idle or handed over (a stream) is not.
func (g *guard) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, ok := c.(*countedConn)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	was, counted := g.state[cc]
	if !counted {
		return
	}
	now := st == http.StateNew || st == http.StateActive
	if now != was {
		g.state[cc] = now
		if now {
			g.pending[cc.addr]++
		} else {
			dec(g.pending, cc.addr)
		}
	}
}

func (g *guard) closed(c *countedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pending, counted := g.state[c]
	if !counted {
		return
	}
	delete(g.state, c)
	if pending {
		dec(g.pending, c.addr)
	}
	dec(g.conns, c.addr)
}

func dec(m map[netip.Addr]int, a netip.Addr) {
	if m[a] <= 1 {
		delete(m, a)
	} else {
		m[a]--
	}
}

// openStream counts a stream of the request's client; false (and the
// refusal counted) when the client is at Streams. release gives it back.
func (g *guard) openStream(r *http.Request) (release func(), ok bool) {
	a := g.clientAddr(r)
	if g.l.Streams <= 0 || !a.IsValid() || in(g.l.Exempt, a) {
		return func() {}, true
	}
	g.mu.Lock()
	if g.streams[a] >= g.l.Streams {
		g.mu.Unlock()
		g.refuse(refuseStreams, a, "too many streams from one address")
		return nil, false
	}
	g.streams[a]++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			dec(g.streams, a)
			g.mu.Unlock()
		})
	}, true
}

// allowRead takes one read from the client's budget.
func (g *guard) allowRead(r *http.Request) bool {
	a := g.clientAddr(r)
	if g.l.Reads <= 0 || !a.IsValid() || in(g.l.Exempt, a) {
		return true
	}
	now := time.Now()
	g.mu.Lock()
	if now.Sub(g.swept) > time.Minute {
		// A reader unseen for a minute has a full bucket again: forget it,
		// so the map holds only recent clients.
		for k, rd := range g.readers {
			if now.Sub(rd.seen) > time.Minute {
				delete(g.readers, k)
			}
		}
		g.swept = now
	}
	rd := g.readers[a]
	if rd == nil {
		rd = &reader{lim: rate.NewLimiter(rate.Limit(g.l.Reads), max(1, int(2*g.l.Reads)))}
		g.readers[a] = rd
	}
	rd.seen = now
	ok := rd.lim.AllowN(now, 1)
	g.mu.Unlock()
	if !ok {
		g.refuse(refuseReads, a, "reads over the per-address rate")
	}
	return ok
}

// hostAllowed reports whether the node answers requests for host (a Host
// header, with or without a port).
func (g *guard) hostAllowed(host string) bool {
	if g.l.Hosts == nil {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	if _, err := netip.ParseAddr(name); err == nil || name == "localhost" {
		return true
	}
	for _, p := range g.l.Hosts {
		if ok, _ := path.Match(strings.ToLower(p), name); ok {
			return true
		}
	}
	return false
}

// checkHost refuses requests for a Host the node does not serve.
func (s *Server) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !s.guard.hostAllowed(r.Host) {
			s.guard.refuse(refuseHost, s.guard.clientAddr(r), "Host "+r.Host+" is not served")
			return s.writeError(c, quotehub.Errorf(quotehub.EForbidden, "host %q is not served here", r.Host))
		}
		return next(c)
	}
}

// limitReads applies the per-address read rate.
func (s *Server) limitReads(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.guard.allowRead(c.Request()) {
			return s.writeError(c, quotehub.Errorf(quotehub.ERateLimited, "too many reads from your address; retry after a second"))
		}
		return next(c)
	}
}

// controlLimiter returns the allowance of control frames of one
// WebSocket of r's client, or nil for none.
func (g *guard) controlLimiter(r *http.Request) func() bool {
	a := g.clientAddr(r)
	if g.l.ControlFrames <= 0 || in(g.l.Exempt, a) {
		return nil
	}
	lim := rate.NewLimiter(rate.Limit(g.l.ControlFrames), max(1, int(2*g.l.ControlFrames)))
	return func() bool {
		if lim.Allow() {
			return true
		}
		g.refuse(refuseControls, a, "control frames over the per-connection rate")
		return false
	}
}

// closeOverStreams is the close of a WebSocket over the per-address
// stream limit.
const closeOverStreams = hub.CloseTryAgain
