package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/history"
	"quotehub/hub"
	"quotehub/refresher"
	"quotehub/refresher/upstream/sim"
	"quotehub/store/memory"
	"quotehub/store/mysql"
	"quotehub/store/redis"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/store/usercache"
	"quotehub/web"
)

// node is one wired quotehub node.
type node struct {
	catalog   *memory.Catalog
	stores    *stores
	users     quotehub.UserStore
	folios    *usercache.Store // nil when the portfolio cache is off
	hub       *hub.Hub
	alerts    *alerts
	refresher *refresher.Refresher
	web       *web.Server
	sims      []*sim.Provider
	cert      *certificate // nil without TLS

	serveErr chan error
	stopBg   context.CancelFunc
	bgDone   chan struct{}
}

// stores are the shared stores of a node: the embedded memory ones, or
// Redis for a cluster.
type stores struct {
	cache  quotehub.Cache
	active quotehub.ActiveSet
	bus    interface {
		quotehub.Bus
		Handle(func([]quotehub.Quote))
	}
	local     *memory.Cache // a local copy of what the node sees, fed by the bus (Redis only)
	userBus   quotehub.UserBus
	userEvts  *userEvents // what the user bus delivers on this node, by kind
	candles   quotehub.CandleCache
	owns      func(string) bool
	held      func() []int // Redis only: the refresh slots this node leases
	degraded  func() bool
	fetchLock quotehub.FetchLock
	resync    func()
	leases    *leaseHooks // Redis only: what the lease round calls back
	checks    map[string]quotehub.HealthChecker
	run       []func(context.Context) // background loops, stopped at shutdown
	close     []func()                // run in order after the loops stopped
}

// openStores picks the stores from the configuration.
func openStores(cfg Config, log *zerolog.Logger, reg prometheus.Registerer) (*stores, error) {
	evts := &userEvents{}
	if cfg.RedisURL == "" {
		ub := memory.NewUserBus()
		ub.HandleUser(evts.deliver)
		return &stores{
			cache: memory.NewCache(), active: memory.NewActiveSet(), bus: memory.NewBus(),
			candles: memory.NewCandleCache(nil), checks: map[string]quotehub.HealthChecker{},
			userBus: ub, userEvts: evts,
		}, nil
	}
	goredis.SetLogger(redisLogger{log.With().Str("component", "go-redis").Logger()})
	rdb, err := redis.Connect(context.Background(), cfg.RedisURL, cfg.RedisCluster, 3*time.Second)
	switch {
	case errors.Is(err, redis.ErrUnreachable):
		// Not fatal: the node starts degraded, reports not ready, and
		// go-redis keeps trying. A URL that does not parse is fatal.
		log.Warn().Err(err).Msg("Redis unreachable at start; serving degraded until it answers")
	case err != nil:
		return nil, err
	}
	m := redis.NewMetrics(reg)
	if rdb != nil {
		rdb.AddHook(m.Hook())
	}
	local := memory.NewCache()
	storeLog := log.With().Str("component", "redis").Logger()
	warn := storeLog.Sample(&zerolog.BurstSampler{Burst: 3, Period: 10 * time.Second})
	cache := redis.NewCache(rdb, cfg.RedisPrefix, 0).WithFallback(local, func(err error) {
		warn.Warn().Err(err).Msg("Redis cache unreachable; answering from the local copy")
	})
	bus := redis.NewBus(rdb, redis.BusOptions{
		Prefix: cfg.RedisPrefix, Shards: cfg.BusShards, Sharded: cfg.RedisShardedPubSub, Cache: cache,
		Metrics: m, Logger: &storeLog,
	})
	ub := redis.NewUserBus(rdb, cfg.RedisPrefix, &storeLog)
	ub.HandleUser(evts.deliver)
	ub.OnResync(evts.resync)
	ub.OnState(evts.state)
	hooks := &leaseHooks{}
	own := redis.NewOwnership(rdb, redis.OwnershipOptions{
		Prefix: cfg.RedisPrefix, Node: cfg.NodeID, Slots: cfg.RefreshSlots, TTL: cfg.LeaseTTL, Metrics: m, Logger: &storeLog,
		OnChange: hooks.changed, OnStateLost: hooks.stateLost,
	})
	return &stores{
		cache: cache, active: redis.NewActiveSet(rdb, cfg.RedisPrefix), bus: bus, local: local, leases: hooks,
		userBus: ub, userEvts: evts,
		candles: redis.NewCandleCache(rdb, cfg.RedisPrefix),
		owns:    own.Owns, held: own.Held, degraded: func() bool { return !own.Connected() },
		fetchLock: redis.NewFetchLock(rdb, cfg.RedisPrefix, cfg.NodeID, m),
		resync:    func() { bus.Resync("recovered") },
		checks:    map[string]quotehub.HealthChecker{"redis": redis.Health{RDB: rdb}},
		run: []func(context.Context){own.Run, func(ctx context.Context) { bus.Start(ctx); <-ctx.Done() },
			func(ctx context.Context) { ub.Start(ctx); <-ctx.Done() }},
		close: []func(){func() { _ = bus.Close() }, func() { _ = ub.Close() }, func() { _ = rdb.Close() }},
	}, nil
}

// build wires the stores, the providers, the refresher, the hub and the
// web server.
func build(cfg Config, log *zerolog.Logger, reg *prometheus.Registry) (*node, error) {
	verifier, err := openVerifier(cfg, log)
	if err != nil {
		return nil, err
	}
	var cert *certificate
	var tlsConfig *tls.Config
	if cfg.Security.TLSCert != "" {
		if cert, err = loadCertificate(cfg.Security.TLSCert, cfg.Security.TLSKey); err != nil {
			return nil, err
		}
		tlsConfig = cert.config()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	up := openUpstreams(cfg, log, reg)
	catalog := memory.NewCatalog(up.catalog)
	st, err := openStores(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	users, err := openUsers(cfg, log)
	if err != nil {
		st.closeAll()
		return nil, err
	}
	st.checks["users"] = users
	st.close = append(st.close, func() { _ = users.Close() })
	// Portfolios are read through a cache kept true by the user bus: live
	// from the start on a single node's bus, which loses nothing; on Redis
	// once the bus reports it is subscribed.
	var portfolios quotehub.UserStore = users
	var folios *usercache.Store
	if cfg.PortfolioCache > 0 {
		folios = usercache.New(users, cfg.PortfolioCache, cfg.RedisURL == "")
		cacheHoldings(folios, st.userEvts)
		portfolios = folios
	}

	var h *hub.Hub
	al := newAlerts(users, st.userBus, cfg.StoreTimeout, log.With().Str("component", "alerts").Logger(), reg)
	st.userEvts.on(quotehub.UserRulesChanged, al.rulesChanged)
	st.userEvts.onResync(al.resync)
	st.run = append(st.run, al.run)
	var ref *refresher.Refresher
	var candles *history.Service
	rec := newRecorder(catalog, users, st.owns, &ref, &candles, log)
	st.run = append(st.run, func(ctx context.Context) { rec.Run(ctx, flushEvery) })
	refLog := log.With().Str("component", "refresher").Logger()
	ref, err = refresher.New(refresher.Options{
		Cache: st.cache, Bus: st.bus, Active: st.active, Catalog: catalog, Sources: up.sources, Route: up.route,
		// Symbols with an alert rule stay active with no viewer.
		Local: func() []string { return append(h.Symbols(), al.Symbols()...) }, Owns: st.owns, Degraded: st.degraded,
		// The changed quotes of owned symbols: alerts are evaluated and
		// candles recorded there, once in the cluster.
		OnChanged: func(qs []quotehub.Quote) { al.changed(qs); rec.Fold(qs) }, OnTakeover: al.takeover,
		FetchLock: st.fetchLock, OnRecover: st.resync, DayClose: dayClose(catalog, users, up.route),
		Freshness: cfg.Freshness, ActiveWindow: cfg.ActiveWindow, Heartbeat: cfg.Heartbeat,
		FetchTimeout: cfg.FetchTimeout, UpstreamTimeout: cfg.UpstreamTimeout,
		Metrics: refresher.NewMetrics(reg), Logger: &refLog,
	})
	if err != nil {
		st.closeAll()
		return nil, err
	}
	hubLog := log.With().Str("component", "hub").Logger()
	feed := &candleFeed{} // completed below, once the candles are wired
	h = hub.New(hub.Options{
		Cache: st.cache, Catalog: catalog, Node: cfg.NodeID,
		MaxSymbols: cfg.MaxSymbols, MaxMessageBytes: cfg.MaxMessageBytes, MaxConnections: cfg.MaxConnections,
		OpsPerSecond: cfg.OpsPerSecond, OpsBurst: int(2 * cfg.OpsPerSecond), SlowTimeout: cfg.SlowConsumer,
		WriteDelay: cfg.WriteDelay, Writers: cfg.Writers,
		OnActive: func(s string) { st.bus.Watch(s); ref.Activate(s) },
		OnIdle:   func(s string) { st.bus.Unwatch(s); ref.Deactivate(s) },
		Lists:    &web.Lists{Users: portfolios, Catalog: catalog},
		Metrics:  hub.NewMetrics(reg), Logger: &hubLog,
		// Candle streams: the open candle as reads return it (feed).
		Candles: feed, MaxCandleStreams: cfg.MaxCandles,
	})
	followLists(h, st.userEvts, cfg.StoreTimeout)
	if st.leases != nil {
		cache, local := st.cache, st.local
		st.leases.onChange = ref.Rescan
		st.leases.onStateLost = func(ctx context.Context) {
			// Redis lost everything: write back the last quote this node
			// knows of every symbol its clients watch (kept current by the
			// bus) and of the other symbols it tracks when that quote is
			// fresh (it refreshed them itself), so reads and the new owners
			// continue from them; the seq fence keeps anything newer. Then
			// the refresher re-touches its symbols.
			watched := h.Symbols()
			qs, _ := local.GetMany(ctx, append(watched, ref.Tracked()...))
			fresh := time.Now().Add(-cfg.Freshness).UnixMilli()
			known := qs[:0]
			seen := map[string]bool{}
			for i, q := range qs {
				if q.Symbol == "" || seen[q.Symbol] || i >= len(watched) && q.FetchedAt < fresh {
					continue
				}
				seen[q.Symbol] = true
				known = append(known, q)
			}
			if _, err := cache.PutMany(ctx, known); err != nil {
				log.Warn().Err(err).Msg("writing the last known quotes back to Redis failed")
			}
			ref.Rebuild()
			log.Info().Int("quotes", len(known)).Msg("wrote the last known quotes back to Redis")
		}
	}
	// Every quote this node receives is folded into the open candles of
	// its symbol, so the newest candle of a read is live.
	live := history.NewLive(func(sym string) (*quotehub.Calendar, bool) {
		info, ok, err := catalog.Lookup(context.Background(), sym)
		return quotehub.CalendarOf(info.Exchange), ok && err == nil
	}, nil)
	if st.local != nil {
		local := st.local
		st.bus.Handle(func(qs []quotehub.Quote) {
			_, _ = local.PutMany(context.Background(), qs)
			live.Fold(qs)
			h.Publish(qs)
		})
	} else {
		st.bus.Handle(func(qs []quotehub.Quote) {
			live.Fold(qs)
			h.Publish(qs)
		})
	}
	// Reads go cache (Redis in a cluster) → store → upstream; closed
	// candles are kept in the user-data database (MySQL, or the embedded
	// SQLite file), so a restart or a cold cache costs no upstream call.
	candles = history.New(history.Options{
		Catalog: catalog, Sources: up.candleSource, Cache: st.candles, Store: users, Lock: st.fetchLock, Live: live.Current,
		OnOpen: func(s quotehub.CandleSeries) { h.CandlesChanged(s.Symbol) },
	})
	feed.svc, feed.live = candles, live
	srv, err := web.New(web.Options{
		Hub: h, Reader: ref, Catalog: catalog, Gatherer: reg, Registerer: reg, Candles: candles,
		AllowedOrigins: cfg.AllowedOrigins, PingInterval: cfg.PingInterval, PongTimeout: cfg.PongTimeout,
		SSEKeepalive: cfg.SSEKeepalive, UnsentLimit: cmp.Or(cfg.UnsentLimit, -1), UnreadAge: cfg.UnreadAge, SSEUnreadAge: cfg.SSEUnreadAge, Logger: log, Checks: st.checks,
		Verifier: verifier, AuthRequired: cfg.AuthRequired,
		Users: portfolios, UserLimits: userLimits(cfg), UserBus: st.userBus,
		Limits: cfg.Security.limits(cfg.Addr), TLS: tlsConfig, HideMetrics: !cfg.Security.MetricsPublic,
	})
	if err != nil {
		_ = h.Shutdown(context.Background())
		st.closeAll()
		return nil, err
	}
	al.activate = ref.Activate
	st.userEvts.on(quotehub.UserAlertFired, func(ev quotehub.UserEvent) {
		var a quotehub.FiredAlert
		if err := json.Unmarshal(ev.Data, &a); err != nil {
			log.Warn().Err(err).Msg("a fired alert on the user bus does not decode")
			return
		}
		srv.PushAlert(ev.User, a)
	})
	return &node{catalog: catalog, stores: st, users: users, folios: folios, hub: h, alerts: al, refresher: ref, web: srv, sims: up.sims, cert: cert}, nil
}

// userLimits are the limits of users' data on this node: a watchlist
// holds as many symbols as a connection may subscribe to.
func userLimits(cfg Config) quotehub.UserLimits {
	return quotehub.UserLimits{MaxSymbols: cfg.MaxSymbols}.WithDefaults()
}

// openUsers opens the user-data store: MySQL when a DSN is configured
// (a server that does not answer yet is not fatal: /readyz reports it
// and the store reconnects and migrates by itself), else the embedded
// SQLite file under the data directory.
func openUsers(cfg Config, log *zerolog.Logger) (*sqlstore.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := sqlstore.Options{Limits: userLimits(cfg), Timeout: cfg.StoreTimeout}
	if cfg.MySQLDSN == "" {
		return sqlite.Open(ctx, cfg.DataDir, opts)
	}
	mysql.SetLogger(log.With().Str("component", "mysql").Logger())
	s, warn, err := mysql.Open(ctx, cfg.MySQLDSN, mysql.Pool{
		MaxOpen: cfg.MySQLMaxOpen, MaxIdle: cfg.MySQLMaxIdle, MaxLifetime: cfg.MySQLConnLifetime,
	}, opts)
	if warn != nil {
		log.Warn().Err(warn).Msg("MySQL unreachable at start; users' data answers unavailable until it is back")
	}
	return s, err
}

func (st *stores) closeAll() {
	for _, c := range st.close {
		c()
	}
}

// start runs the background loops and the refresher, and serves on ln.
func (n *node) start(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopBg = cancel
	n.bgDone = make(chan struct{})
	loops := append([]func(context.Context){n.refresher.Run}, n.stores.run...)
	done := make(chan struct{}, len(loops))
	for _, run := range loops {
		go func() { run(ctx); done <- struct{}{} }()
	}
	go func() {
		for range loops {
			<-done
		}
		close(n.bgDone)
	}()
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.web.Serve(ln) }()
}

// shutdown stops the node in order: stop accepting and report not ready;
// close every WebSocket with 1001 and end every SSE stream; let plain
// requests end; stop the refresher and hand its leases over; close the
// stores. It gives up waiting at the timeout.
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
	n.stopBg()
	select {
	case <-n.bgDone:
	case <-ctx.Done():
		log.Warn().Msg("fetches still running at the shutdown deadline")
	}
	n.stores.closeAll()
}

// leaseHooks connect the lease round to the refresher, which is built
// after the stores; they are set before the node starts.
type leaseHooks struct {
	onChange    func()
	onStateLost func(context.Context)
}

func (l *leaseHooks) changed() {
	if l.onChange != nil {
		l.onChange()
	}
}

func (l *leaseHooks) stateLost(ctx context.Context) {
	if l.onStateLost != nil {
		l.onStateLost(ctx)
	}
}

// redisLogger sends go-redis's own log lines (reconnects, dropped pub/sub
// messages) to zerolog.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msgf(format, v...)
}
