// Package web is quotehub's HTTP face: an echo server with the WebSocket and
// SSE adapters of the hub, HTTP quote reads, symbol search, health,
// readiness and metrics.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/hub"
	"quotehub/web/board"
)

// Reader answers HTTP quote reads (the refresher).
type Reader interface {
	Read(ctx context.Context, symbol string) (quotehub.Reading, error)
}

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	Hub     *hub.Hub         // required
	Reader  Reader           // required
	Catalog quotehub.Catalog // required
	// Gatherer serves /metrics; Registerer takes the server's own metrics.
	// Default: a fresh registry for both.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// AllowedOrigins are origin patterns (path.Match against the origin's
	// host, or against scheme://host when the pattern has "://") allowed for
	// WebSocket and CORS besides the request's own host.
	AllowedOrigins []string
	// Verifier checks tokens: those of /v1/me/... (required), of streams
	// (which then carry their user) and, with AuthRequired, of every quote
	// route. Without one, a token is answered 401.
	Verifier quotehub.Verifier
	// AuthRequired makes quote reads, /v1/ws and /v1/sse need a token too.
	// Without it they are anonymous, and a stream opened with a token
	// carries its user.
	AuthRequired bool
	// Users keeps users' watchlists, portfolios and alert rules, served
	// under /v1/me; without one those routes answer 503 unavailable.
	Users quotehub.UserStore
	// UserLimits bound what one user may store (zero fields:
	// quotehub.DefaultUserLimits); the store enforces the same.
	UserLimits quotehub.UserLimits
	// UserBus, when set, is told of every change of a user's alert rules
	// (quotehub.UserRulesChanged), so that every node reloads them, and
	// of every change of a watchlist or the portfolio
	// (quotehub.UserListsChanged), so that the sessions following it
	// follow (see Lists).
	UserBus quotehub.UserBus
	// Checks are dependencies /readyz reports on, by name.
	Checks map[string]quotehub.HealthChecker
	// PingInterval is how often a WebSocket is pinged (default 25 s) and
	// PongTimeout how long the pong may take (default 15 s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// SSEKeepalive is the longest an SSE stream stays silent; then a
	// comment line is sent. Default 15 s.
	SSEKeepalive time.Duration
	// UnsentLimit bounds how much of what a stream wrote its socket may
	// hold that the kernel has not sent yet (TCP_NOTSENT_LOWAT): what does
	// not fit waits in the hub's outbox, where a newer quote replaces an
	// older one, instead of queueing in the kernel, whose send buffer can
	// hold seconds of quotes for a client that reads slowly. Default
	// 16 KiB; negative: the kernel's default.
	UnsentLimit int
	// UnreadAge paces each WebSocket by what its peer confirms it has
	// read (a ping answered once everything before it is read; see
	// wsPace): the hub holds the writer while the oldest byte the peer has
	// not confirmed went out more than UnreadAge ago, and meanwhile newer
	// quotes replace older ones in its outbox, so what a slow client reads
	// is recent. 0: off (the peer's receive buffer holds whatever it
	// takes).
	UnreadAge time.Duration
	// SSEUnreadAge paces each SSE stream by the time its peer needs to
	// read what it has not read yet (in flight and in its receive buffer),
	// at the pace its TCP window shows it reads (see pace): the hub writes
	// to it only while that is under SSEUnreadAge. An SSE peer sends
	// nothing back, and a window shows small reads late, so this pacer
	// also holds peers that merely look behind for a while; 0: off.
	SSEUnreadAge time.Duration
	// MaxBatch is the most symbols of one batch read. Default 100.
	MaxBatch int
	// Candles answers /v1/candles; without it those routes answer 404.
	Candles CandleReader
	// Limits per client address, the Host allow-list and the trusted
	// proxies (see Limits). Zero: none.
	Limits Limits
	// HideMetrics keeps /metrics off this server (it is served on the
	// admin listener instead).
	HideMetrics bool
	// TLS, if set, serves HTTPS (HTTP/1.1 only, so WebSockets work) on
	// Serve's listener.
	TLS    *tls.Config
	Logger *zerolog.Logger
}

// Server is the echo application of one node.
type Server struct {
	opts     Options
	e        *echo.Echo
	log      zerolog.Logger
	draining atomic.Bool
	httpDur  *prometheus.HistogramVec
	closes   *closes
	closing  chan struct{} // bounds concurrent WebSocket close handshakes
	streamMu sync.Mutex
	stopped  bool           // Shutdown began: no new reader goroutines
	streams  sync.WaitGroup // WebSocket reader goroutines
	events   eventStreams   // open /v1/me/events streams, by user
	guard    *guard
}

// goStream runs f on a goroutine Shutdown waits for; after Shutdown began
// it returns false and does not run f.
func (s *Server) goStream(f func()) bool {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.stopped {
		return false
	}
	s.streams.Add(1)
	go func() {
		defer s.streams.Done()
		f()
	}()
	return true
}

// New validates opts and builds the routes.
func New(opts Options) (*Server, error) {
	if opts.Hub == nil || opts.Reader == nil || opts.Catalog == nil {
		return nil, errors.New("web: Hub, Reader and Catalog are required")
	}
	for _, p := range opts.AllowedOrigins {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("web: bad origin pattern %q: %w", p, err)
		}
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = 15 * time.Second
	}
	if opts.SSEKeepalive <= 0 {
		opts.SSEKeepalive = 15 * time.Second
	}
	switch {
	case opts.UnsentLimit == 0:
		opts.UnsentLimit = 16 << 10
	case opts.UnsentLimit < 0:
		opts.UnsentLimit = 0 // newWire leaves the kernel's default
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 100
	}
	opts.UserLimits = opts.UserLimits.WithDefaults()
	if opts.Gatherer == nil || opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Gatherer, opts.Registerer = reg, reg
	}
	if opts.Logger == nil {
		l := zerolog.Nop()
		opts.Logger = &l
	}
	s := &Server{opts: opts, e: echo.New(), log: opts.Logger.With().Str("component", "web").Logger(),
		closing: make(chan struct{}, 256)}
	s.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "quotehub_http_request_duration_seconds",
		Help:    "Duration of HTTP requests other than streams, by route and status code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})
	opts.Registerer.MustRegister(s.httpDur, newDependencies(opts.Checks))
	s.closes = newCloses(opts.Registerer, s.log)
	s.guard = newGuard(opts.Limits, opts.Registerer, s.log)

	e := s.e
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = s.guard.ipExtractor
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{TargetHeader: echo.HeaderXRequestID}))
	e.Use(s.recoverAndLog)
	e.Use(s.checkHost)
	e.Use(s.cors)
	e.GET("/v1/ws", s.serveWS)
	e.GET("/v1/sse", s.serveSSE)
	// The read budget is taken before a token is verified: a flood of
	// reads with bad tokens is refused cheaply.
	e.GET("/v1/quotes/:symbol", s.getQuote, s.limitReads, s.requireTokenIf)
	e.GET("/v1/quotes", s.getQuotes, s.limitReads, s.requireTokenIf)
	e.GET("/v1/symbols", s.getSymbols, s.limitReads, s.requireTokenIf)
	e.GET("/v1/candles/:symbol", s.getCandles, s.limitReads, s.requireTokenIf)
	e.GET("/v1/candles", s.getCandleBatch, s.limitReads, s.requireTokenIf)
	e.GET("/v1/me/events", s.serveEvents) // token= allowed, as on the other streams
	me := e.Group("/v1/me", s.requireUser)
	me.GET("", s.getMe)
	s.addMeRoutes(me)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]bool{"ok": true}) })
	e.GET("/readyz", s.getReady)
	if !opts.HideMetrics {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	}
	board.New().Register(e) // the live board: GET / and GET /board/{file}
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.e }

// Serve serves on ln until Shutdown. It returns nil after a shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ln = &limitListener{Listener: ln, g: s.guard}
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.e.Listener = ln
	srv := s.e.Server
	srv.Handler = s.e
	srv.ConnState = s.guard.connState
	srv.ReadHeaderTimeout = 10 * time.Second // slowloris; no Read/WriteTimeout: they would cut streams
	srv.IdleTimeout = 2 * time.Minute
	srv.ErrorLog = stdlog.New(s.log.With().Str("source", "net/http").Logger(), "", 0)
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Drain marks the node not ready, so load balancers stop sending it
// clients, ahead of Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for plain requests and
// WebSocket goroutines to end, or ctx. Streams must already be ending:
// shut the hub down too (concurrently or first).
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	err := s.e.Server.Shutdown(ctx)
	s.streamMu.Lock()
	s.stopped = true
	s.streamMu.Unlock()
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func (s *Server) getReady(c echo.Context) error {
	var reasons []string
	if s.draining.Load() {
		reasons = append(reasons, "node shutting down")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	for name, chk := range s.opts.Checks {
		if err := chk.Ready(ctx); err != nil {
			reasons = append(reasons, name+": "+err.Error())
		}
	}
	if len(reasons) > 0 {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"ready": false, "reasons": reasons})
	}
	return c.JSON(http.StatusOK, map[string]any{"ready": true})
}

// statusOf maps a protocol error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case quotehub.EBadRequest, quotehub.EInvalidSymbol, quotehub.ETooManySymbols:
		return http.StatusBadRequest
	case quotehub.EUnknownSymbol, quotehub.ENotFound:
		return http.StatusNotFound
	case quotehub.EConflict:
		return http.StatusConflict
	case quotehub.EPreconditionFailed:
		return http.StatusPreconditionFailed
	case quotehub.EUnauthorized:
		return http.StatusUnauthorized
	case quotehub.EForbidden:
		return http.StatusForbidden
	case quotehub.ERateLimited:
		return http.StatusTooManyRequests
	case quotehub.EUpstreamUnavailable, quotehub.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError writes the protocol's error body for err.
func (s *Server) writeError(c echo.Context, err error) error {
	code, msg := quotehub.ErrorCode(err), quotehub.ErrorMessage(err)
	status := statusOf(code)
	switch code {
	case quotehub.ERateLimited:
		c.Response().Header().Set("Retry-After", "1")
	case quotehub.EUpstreamUnavailable, quotehub.EUnavailable:
		c.Response().Header().Set("Retry-After", "2")
	case quotehub.EUnauthorized:
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="quotehub"`)
	case quotehub.EInternal:
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		s.log.Error().Err(err).Str("request_id", rid).Str("path", c.Request().URL.Path).Msg("internal error")
		msg = "Internal error; request id " + rid + "."
	}
	return c.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// handleError turns echo's own errors (no route, wrong method, panics
// recovered) into the protocol's error shape.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := quotehub.EBadRequest
		switch he.Code {
		case http.StatusNotFound:
			code = quotehub.ENotFound
		case http.StatusInternalServerError:
			code = quotehub.EInternal
		}
		msg := fmt.Sprint(he.Message)
		if code == quotehub.ENotFound {
			msg = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
		}
		_ = c.JSON(he.Code, map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	_ = s.writeError(c, err)
}

// recoverAndLog recovers panics of handlers, and times and logs (sampled)
// every request with its request id: streams only when their handshake is
// refused, for an accepted stream logs its own line when it ends.
func (s *Server) recoverAndLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
				s.log.Error().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Interface("panic", p).Msg("handler panicked")
				err = s.writeError(c, err)
			}
		}()
		err = next(c)
		route := c.Path()
		if err != nil {
			s.handleError(err, c)
			err = nil
		}
		status := c.Response().Status
		if (route == "/v1/ws" || route == "/v1/sse" || route == "/v1/me/events") && status < 400 {
			return nil // a stream: its access line is written when it ends
		}
		if route == "" {
			route = "unmatched"
		}
		s.httpDur.WithLabelValues(route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		s.closes.access.Info().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Str("method", c.Request().Method).
			Str("uri", redactURI(c.Request().RequestURI)).Int("status", status).Int64("bytes", c.Response().Size).
			Dur("took", time.Since(start)).Msg("request")
		return nil
	}
}

// originAllowed reports whether a browser origin may use the API: same host
// as the request, or matching an allowed pattern (the same rule as the
// WebSocket handshake).
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	scheme, host, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	if strings.EqualFold(host, r.Host) && s.guard.hostAllowed(r.Host) {
		return true
	}
	for _, p := range s.opts.AllowedOrigins {
		target := host
		if strings.Contains(p, "://") {
			target = scheme + "://" + host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// CORS answers for browsers on other origins: allowed ones (the same rule
// as the WebSocket handshake) get a grant on every response and an answer
// to their preflights; others get neither.
const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE"
	// corsHeaders are the request headers a page may send: the token, JSON
	// bodies, the versions of concurrent edits, and SSE's resume point.
	corsHeaders = "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID"
	// corsMaxAge is how long a browser may reuse a preflight's answer
	// (Chromium caps it at 2 h).
	corsMaxAge = "7200"
	// corsExpose are response headers a page may read besides the simple
	// ones: the version to send back in If-Match.
	corsExpose = "ETag"
)

// cors is the middleware that grants allowed origins and answers
// preflights (OPTIONS with Access-Control-Request-Method) before any
// route's own checks, such as a token: a preflight carries none.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		origin := r.Header.Get("Origin")
		if origin == "" {
			return next(c)
		}
		h := c.Response().Header()
		allowed := s.originAllowed(r, origin)
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			h.Add("Vary", "Origin")
			if allowed {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Expose-Headers", corsExpose)
			}
			return next(c)
		}
		h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
		if !allowed {
			return quotehub.Errorf(quotehub.EForbidden, "origin %s may not use this API (QUOTEHUB_ALLOWED_ORIGINS)", origin)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		return c.NoContent(http.StatusNoContent)
	}
}
