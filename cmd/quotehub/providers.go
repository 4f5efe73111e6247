package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/refresher"
	"quotehub/refresher/upstream/resilient"
	"quotehub/refresher/upstream/sim"
	"quotehub/refresher/upstream/upbit"
	"quotehub/refresher/upstream/yahoo"
)

// upstreams are the providers a node runs, the catalogue they serve, and
// which provider serves which catalogue entry.
type upstreams struct {
	sources []refresher.Source
	catalog []quotehub.SymbolInfo
	route   func(quotehub.SymbolInfo) string
	sims    []*sim.Provider
	// candles are the providers whose upstream has candles, by name.
	candles map[string]quotehub.CandleSource
}

// candleSource returns the candle source of the provider that serves info,
// or nil when that upstream has no candles.
func (u *upstreams) candleSource(info quotehub.SymbolInfo) quotehub.CandleSource {
	return u.candles[u.route(info)]
}

// openUpstreams builds the configured providers, each behind its own
// timeouts, retries and circuit breaker, and the catalogue: the built-in
// one (stocks, Upbit markets, synthetic symbols) with Upbit's own market
// list in place of the built-in Upbit entries when Upbit runs. A symbol
// is served by Upbit (UPBIT markets) or Yahoo (stocks) when they run,
// else by sim; entries no running provider serves are left out.
func openUpstreams(cfg Config, log *zerolog.Logger, reg prometheus.Registerer) *upstreams {
	enabled := map[string]bool{}
	for _, p := range cfg.Providers {
		enabled[p] = true
	}
	interval := func(d time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return cfg.RefreshInterval
	}
	breakers := resilient.NewMetrics(reg)
	upLog := log.With().Str("component", "upstream").Logger()
	wrap := func(p quotehub.Provider) quotehub.Provider {
		return resilient.Wrap(p, resilient.Options{Timeout: cfg.UpstreamTimeout, Metrics: breakers, Logger: &upLog}).AsProvider()
	}

	u := &upstreams{candles: map[string]quotehub.CandleSource{}}
	builtin := sim.Catalog()
	if cfg.SimSymbols > 0 {
		builtin = append(builtin, sim.Synthetic(cfg.SimSymbols)...)
	}
	if enabled["sim"] {
		p := sim.New(sim.Options{
			Symbols: builtin, Seed: cfg.SimSeed, Latency: cfg.SimLatency, FailRate: cfg.SimFailRate,
			Down: cfg.SimDown, ChangeEveryFetch: cfg.SimEveryTick, MaxBatch: cfg.SimBatch,
		})
		u.sims = append(u.sims, p)
		u.candles[sim.Name] = p
		u.sources = append(u.sources, refresher.Source{Provider: wrap(p), Interval: cfg.RefreshInterval})
	}
	upbitMarkets := []quotehub.SymbolInfo(nil)
	if enabled["upbit"] {
		p := upbit.New(upbit.Options{
			BaseURL: cfg.UpbitURL, WSURL: cfg.UpbitWSURL, RatePerSecond: cfg.UpbitRate, MaxBatch: cfg.UpbitBatch,
			Timeout: cfg.UpbitTimeout, Logger: &upLog,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.UpbitTimeout)
		markets, err := p.Catalog(ctx)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("Upbit market list unavailable; using the built-in Upbit markets")
		}
		upbitMarkets = markets
		u.candles[upbit.Name] = p
		u.sources = append(u.sources, refresher.Source{
			Provider: wrap(p), Interval: interval(cfg.UpbitInterval), Push: cfg.UpbitMode == "push",
		})
	}
	if enabled["yahoo"] {
		p := yahoo.New(yahoo.Options{
			BaseURL: cfg.YahooURL, RatePerSecond: cfg.YahooRate, MaxBatch: cfg.YahooBatch,
			Concurrency: cfg.YahooParallel, Timeout: cfg.YahooTimeout, Logger: &upLog,
		})
		u.candles[yahoo.Name] = p
		u.sources = append(u.sources, refresher.Source{
			Provider: wrap(p), Interval: interval(cfg.YahooInterval), Concurrency: cfg.YahooParallel,
		})
	}

	u.route = func(info quotehub.SymbolInfo) string {
		switch info.Exchange {
		case quotehub.ExchangeUpbit:
			if enabled["upbit"] {
				return upbit.Name
			}
		case quotehub.ExchangeKRX, quotehub.ExchangeNYSE, quotehub.ExchangeNASDAQ, sim.ExchangeFX: // FX:USDKRW is Yahoo's KRW=X
			if enabled["yahoo"] {
				return yahoo.Name
			}
		}
		if enabled["sim"] {
			return sim.Name
		}
		return ""
	}
	for _, e := range builtin {
		if e.Exchange == quotehub.ExchangeUpbit && len(upbitMarkets) > 0 {
			continue // Upbit's own list replaces the built-in one
		}
		if u.route(e) != "" {
			u.catalog = append(u.catalog, e)
		}
	}
	u.catalog = append(u.catalog, upbitMarkets...)
	return u
}
