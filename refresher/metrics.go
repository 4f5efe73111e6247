package refresher

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the refresher's Prometheus collectors.
type Metrics struct {
	UpstreamRequests *prometheus.CounterVec
	SymbolsFetched   *prometheus.CounterVec
	FetchDuration    *prometheus.HistogramVec
	Rejected         *prometheus.CounterVec
	Published        prometheus.Counter
	CacheReads       *prometheus.CounterVec
	ActiveSymbols    *prometheus.GaugeVec
	Owned            prometheus.Gauge
	Errors           *prometheus.CounterVec
	Streamed         *prometheus.CounterVec
	Walk             prometheus.Histogram
	Backlog          *prometheus.GaugeVec
}

// NewMetrics creates the refresher's collectors and registers them with reg
// (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_requests_total", Help: "Requests to upstream providers, by outcome (ok, error, rate_limited).",
		}, []string{"provider", "outcome"}),
		SymbolsFetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_symbols_fetched_total", Help: "Symbols asked of upstream providers.",
		}, []string{"provider"}),
		FetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quotehub_refresh_duration_seconds", Help: "Duration of one upstream fetch.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_quotes_rejected_total", Help: "Quotes from upstreams dropped as malformed.",
		}, []string{"provider"}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_quotes_published_total", Help: "Changed quotes written to the cache and published by this node.",
		}),
		CacheReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_cache_reads_total", Help: "HTTP quote reads by cache result (hit, stale, miss).",
		}, []string{"result"}),
		ActiveSymbols: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotehub_active_symbols", Help: "Active symbols: used on this node (local) or anywhere (cluster).",
		}, []string{"scope"}),
		Owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quotehub_refresh_owned_symbols", Help: "Active symbols this node refreshes.",
		}),
		Streamed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_stream_quotes_total", Help: "Quotes pushed by streaming upstreams.",
		}, []string{"provider"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_refresher_errors_total", Help: "Store errors met by the refresher, by operation.",
		}, []string{"op"}),
		Walk: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quotehub_refresh_walk_seconds",
			Help:    "Duration of one walk over the refreshed symbols: finding the due ones and starting their fetches.",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1},
		}),
		Backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotehub_refresh_backlog", Help: "Symbols due at the last walk that waited for a later one: the provider was at its concurrency.",
		}, []string{"provider"}),
	}
	if reg != nil {
		reg.MustRegister(m.UpstreamRequests, m.SymbolsFetched, m.FetchDuration, m.Rejected, m.Published,
			m.CacheReads, m.ActiveSymbols, m.Owned, m.Errors, m.Streamed, m.Walk, m.Backlog)
	}
	return m
}
