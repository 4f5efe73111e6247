package hub

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hub's Prometheus collectors. The names are relied on by
// dashboards and alerts; see docs/operations.md.
type Metrics struct {
	Connections     *prometheus.GaugeVec
	Subscriptions   prometheus.Gauge
	LocalActive     prometheus.Gauge
	Delivered       *prometheus.CounterVec
	Conflated       prometheus.Counter
	SlowDisconnects prometheus.Counter
	Latency         *prometheus.HistogramVec
	Frames          *prometheus.CounterVec
	Held            prometheus.Counter
}

// NewMetrics creates the hub's collectors and registers them with reg
// (nil: not registered, for tests that do not read them).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotehub_connections", Help: "Open client connections.",
		}, []string{"transport"}),
		Subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quotehub_subscriptions", Help: "Subscriptions (connection × symbol) on this node.",
		}),
		LocalActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quotehub_local_subscribed_symbols", Help: "Symbols with at least one subscriber on this node.",
		}),
		Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_quotes_delivered_total", Help: "Quotes written to client sockets.",
		}, []string{"transport"}),
		Conflated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_quotes_conflated_total", Help: "Undelivered quotes replaced by a newer one of the same symbol.",
		}),
		SlowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_slow_consumer_disconnects_total", Help: "Clients closed because they drained nothing for the slow-consumer timeout.",
		}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quotehub_delivery_latency_seconds",
			Help:    "Time from a quote's fetch to its write to a client socket (the oldest live quote of each write).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"transport"}),
		Frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_writes_total", Help: "Writes (frames or flushed chunks) to client sockets.",
		}, []string{"transport"}),
		Held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_writes_held_total", Help: "Turns of a client's writer that wrote nothing because the client had more unread than it reads in QUOTEHUB_UNREAD_AGE.",
		}),
	}
	// Every transport's series exist from the start, so dashboards and
	// alerts see zeros rather than nothing.
	for _, t := range []string{"ws", "sse"} {
		m.Connections.WithLabelValues(t)
		m.Delivered.WithLabelValues(t)
		m.Latency.WithLabelValues(t)
		m.Frames.WithLabelValues(t)
	}
	if reg != nil {
		reg.MustRegister(m.Connections, m.Subscriptions, m.LocalActive, m.Delivered, m.Conflated,
			m.SlowDisconnects, m.Latency, m.Frames, m.Held)
	}
	return m
}
